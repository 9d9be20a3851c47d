/* fq_cases.h - random fake-quantization problems for the suites that compare two
 * implementations (CPU tiers against the scalar reference, CUDA against the CPU): the case, its
 * host tensors with values that stress the kernels, and comparisons that print the case, the
 * tensor and the first differing element. SPDX-License-Identifier: MIT */
#ifndef LLMQ_TEST_FQ_CASES_H
#define LLMQ_TEST_FQ_CASES_H

#include <stdbool.h>

#include "testing.h"

typedef struct fq_case {
    llmq_dtype qdtype;
    int32_t qmin, qmax; /* a custom range (llmq_scheme_set_range), or both 0: the dtype's */
    llmq_symmetry sym;
    test_gran gran;
    llmq_rounding rounding;
    llmq_numerics numerics;
    int32_t ndim;
    int64_t shape[3];
    llmq_dtype x_dtype, dy_dtype, out_dtype;
    int zp_kind;  /* 0: zero_point NULL, 1: S32 codes, 2: F32 (learnable) */
    int lsq;      /* bit 0: dscale wanted, bit 1: dzero_point (zp_kind != 0 only) */
    bool in_place; /* y into x, dx into dy (out_dtype is then x_dtype / dy_dtype) */
    bool nans;    /* some NaN in x */
    float grad_factor;
} fq_case;

/* A case's host inputs, and per parameter what bounds the sums of its LSQ terms. */
typedef struct fq_problem {
    fq_case c;
    llmq_scheme *scheme;
    llmq_tensor *x, *dy, *scale, *zero_point; /* zero_point NULL for zp_kind 0 */
    int64_t nparams;
    int64_t *count;           /* elements per parameter */
    double *bound_s, *bound_z; /* sums of bounds of |term| of dscale / dzero_point */
} fq_problem;

/* A random case: shapes from dims (n of them), every dtype, granularity (per-group sizes that
 * do and do not divide the row), custom ranges of 2 to 8 bits, rounding and numerics mode. */
void fq_case_random(test_rng *rng, const int64_t *dims, int n, fq_case *c);

/* "s4[-8,7] asym per-group(g=7) half_even/pytorch x=f16 dy=f32 out=bf16 zp=f32 lsq=3 ... shape
 * [3, 17]" for messages. */
const char *fq_case_str(const fq_case *c, char *buf, size_t size);

/* The problem of c on ctx (host tensors), values drawn from seed. */
void fq_problem_make(llmq_context *ctx, const fq_case *c, uint64_t seed, fq_problem *p);
void fq_problem_destroy(fq_problem *p);

/* An empty host tensor shaped as x (dtype dt) or as the parameters (F32). */
llmq_tensor *fq_like_x(llmq_context *ctx, const fq_problem *p, llmq_dtype dt);
llmq_tensor *fq_like_params(llmq_context *ctx, const fq_problem *p);

/* Host tensors got and want of one dtype and shape hold the same bits, NaN payloads included.
 * Otherwise prints the case, `what`, the first differing flat index and both values, and
 * returns false. */
bool fq_same_bits(const fq_problem *p, const char *what, const llmq_tensor *got,
                  const llmq_tensor *want);

/* F32 parameter sums got and want agree within what two summation orders of the same float
 * terms in double may differ by: |got - want| <= ulp(max(|got|, |want|)) +
 * 2^-50 * count * bound per parameter (bit equality when either is not finite). Otherwise prints
 * as fq_same_bits() and returns false. */
bool fq_close_sums(const fq_problem *p, const char *what, const llmq_tensor *got,
                   const llmq_tensor *want, bool zero_point);

#endif
