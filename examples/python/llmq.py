"""llmq for Python: the C library through ctypes and NumPy, with no compiled extension.

    import numpy as np, llmq
    ctx = llmq.Context("cpu")
    w = np.random.default_rng(0).standard_normal((256, 512), dtype=np.float32)
    wq = llmq.quantize_dynamic(w, llmq.Scheme(ctx, "s4", symmetry="asymmetric",
                                              granularity="per_group", group_size=128))
    x = np.random.default_rng(1).standard_normal((8, 512), dtype=np.float32)
    y = llmq.matmul(x, wq).numpy()          # x @ dequantize(wq).T, in float32

The library is loaded on first use from $LLMQ_LIB (a path to libllmq.so.0), else the dynamic
loader's search path, else the usual install directories, else a build directory of the source
tree this file sits in; llmq.load(path) chooses one explicitly. docs/python.md is the guide.

Lifetime rules (the C rules of docs/THREADS.md and include/llmq, enforced here):
- Every object keeps alive what it depends on: a tensor its context, the NumPy array it wraps
  and the model it views; a scheme, quantizer, parameter table or recipe its context; a scheme
  owned by a tensor, quantizer or table entry (read-only) its owner. Objects are freed when the
  last reference goes, or by close() or at the end of a `with` block; close() twice is harmless.
- Closing an object closes everything made from it (a context its tensors, schemes,
  quantizers, tables, recipes and models; a model the tensors viewing it), and the C objects
  are destroyed in the order the C API requires, whatever the order in which Python collects
  them.
- Tensor.numpy() views the tensor's memory without copying, as do a quantizer's scale,
  zero_point and range; memory stays valid while a view exists, even after close() (the C
  object is destroyed when its last view goes).
- A context serialises the calls made through it with a lock, so several Python threads may
  share one; for parallel work give each thread its own context.

Every failing call raises an LlmqError subclass carrying the status, its name and the
context's message "function: argument=value: reason" (llmq_context_last_error).

Extending the binding to new C functions is declarative: paste the prototype into PROTOTYPES,
name new handle / enum / struct types in HANDLES / ENUMS / STRUCTS, and derive a class from
Handle for a new handle type (tests/ffi/test_cffi_header.py checks all of it against the
header). SPDX-License-Identifier: MIT
"""
import collections
import ctypes
import ctypes.util
import os
import pathlib
import re
import threading
import weakref

import numpy as np

__all__ = [
    "LlmqError", "InvalidArgError", "OutOfMemoryError", "UnsupportedError", "BackendError",
    "FileError", "ParseError", "StateError", "AbiError", "InternalError", "NonFiniteError",
    "Context", "Tensor", "Scheme", "Model", "ModelWriter", "Quantizer", "QTable", "Recipe",
    "RecipeChoice", "Handle", "Plan", "PlanSensitivity",
    "load", "library", "version", "version_number", "build_info", "status_name",
    "tensor", "empty", "empty_quantized", "quantize", "quantize_dynamic", "dequantize",
    "pack", "unpack", "convert", "matmul", "matmul_outlier", "fake_quantize",
    "fake_quantize_backward",
    "observer_param_bounds", "save_model",
    "DTYPES", "SYMMETRY", "GRANULARITY", "ROUNDING", "NUMERICS", "CPU_ISA", "OBSERVER",
    "OBSERVER_PARAM", "ACTIVATION_MODE", "PLAN_OBJECTIVE",
]

# ------------------------------------------------------------------------------------------
# The C API, declared once. Types are named as in include/llmq/*.h.

#: Opaque handle types: always used through pointers.
HANDLES = ("llmq_context", "llmq_tensor", "llmq_scheme", "llmq_model", "llmq_model_writer",
           "llmq_quantizer", "llmq_qtable", "llmq_recipe", "llmq_plan")
_OPAQUE = {name: type(name, (ctypes.Structure,), {"_fields_": []}) for name in HANDLES}

#: Enum types: 32-bit ints (each C enum is pinned to 32 bits by a FORCE32_ value).
ENUMS = ("llmq_status", "llmq_cpu_isa", "llmq_dtype", "llmq_symmetry", "llmq_granularity",
         "llmq_rounding", "llmq_numerics", "llmq_weight_layout", "llmq_requant",
         "llmq_model_format", "llmq_observer", "llmq_observer_param", "llmq_activation_mode",
         "llmq_memory", "llmq_plan_objective")

ALLOC_FN = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t)
FREE_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)


class Allocator(ctypes.Structure):
    """llmq_allocator."""
    _fields_ = [("alloc", ALLOC_FN), ("free", FREE_FN), ("user", ctypes.c_void_p)]


class ContextOptions(ctypes.Structure):
    """llmq_context_options (versioned by `size`; fill with llmq_context_options_defaults)."""
    _fields_ = [("size", ctypes.c_size_t), ("backend", ctypes.c_char_p),
                ("max_isa", ctypes.c_int32), ("reserved0_", ctypes.c_uint32),
                ("allocator", Allocator), ("reserved", ctypes.c_uint64 * 4)]


class MatmulOptions(ctypes.Structure):
    """llmq_matmul_options (versioned by `size`; fill with llmq_matmul_options_defaults)."""
    _fields_ = [("size", ctypes.c_size_t), ("weight_layout", ctypes.c_int32),
                ("requant", ctypes.c_int32), ("reserved", ctypes.c_uint64 * 4)]


class RecipeChoiceStruct(ctypes.Structure):
    """llmq_recipe_choice (versioned by `size`; fill with llmq_recipe_choice_defaults, release
    with llmq_recipe_choice_clear)."""
    _fields_ = [("size", ctypes.c_size_t), ("rule", ctypes.c_int32), ("skip", ctypes.c_uint32),
                ("weight", ctypes.POINTER(_OPAQUE["llmq_scheme"])),
                ("activation", ctypes.POINTER(_OPAQUE["llmq_scheme"])),
                ("activation_mode", ctypes.c_int32), ("reserved0_", ctypes.c_uint32),
                ("reserved", ctypes.c_uint64 * 6)]


class RecipeSmoothQuantStruct(ctypes.Structure):
    """llmq_recipe_smoothquant (versioned by `size`, set by the caller; filled by
    llmq_recipe_resolve_smoothquant)."""
    _fields_ = [("size", ctypes.c_size_t), ("rule", ctypes.c_int32),
                ("enabled", ctypes.c_uint32), ("search", ctypes.c_uint32),
                ("alpha", ctypes.c_float), ("grid", ctypes.c_int32),
                ("reserved0_", ctypes.c_uint32), ("fold", ctypes.c_char * 256),
                ("reserved", ctypes.c_uint64 * 4)]


#: Structs with fields, by C name.
STRUCTS = {"llmq_allocator": Allocator, "llmq_context_options": ContextOptions,
           "llmq_matmul_options": MatmulOptions, "llmq_recipe_choice": RecipeChoiceStruct,
           "llmq_recipe_smoothquant": RecipeSmoothQuantStruct}

#: Every exported function, as the headers declare it (without LLMQ_API / LLMQ_NODISCARD).
PROTOTYPES = """
uint32_t llmq_version_number(void);
const char *llmq_version_string(void);
const char *llmq_build_info(void);
const char *llmq_status_name(llmq_status status);

llmq_status llmq_context_options_defaults(llmq_context_options *options, size_t size);
llmq_status llmq_context_create(llmq_context **out, const char *backend);
llmq_status llmq_context_create_with_options(llmq_context **out,
    const llmq_context_options *options);
void llmq_context_destroy(llmq_context *ctx);
const char *llmq_context_last_error(const llmq_context *ctx);
const char *llmq_context_backend_name(const llmq_context *ctx);
llmq_cpu_isa llmq_context_cpu_isa(const llmq_context *ctx);
llmq_cpu_isa llmq_context_host_isa(const llmq_context *ctx);
const char *llmq_cpu_isa_name(llmq_cpu_isa isa);

const char *llmq_dtype_name(llmq_dtype dtype);
uint32_t llmq_dtype_bits(llmq_dtype dtype);
llmq_status llmq_tensor_create(llmq_context *ctx, llmq_dtype dtype, int32_t ndim,
    const int64_t *shape, llmq_tensor **out);
llmq_status llmq_tensor_wrap(llmq_context *ctx, llmq_dtype dtype, int32_t ndim,
    const int64_t *shape, void *data, size_t row_stride, llmq_tensor **out);
void llmq_tensor_destroy(llmq_tensor *t);
llmq_dtype llmq_tensor_dtype(const llmq_tensor *t);
int32_t llmq_tensor_ndim(const llmq_tensor *t);
int64_t llmq_tensor_dim(const llmq_tensor *t, int32_t axis);
int64_t llmq_tensor_numel(const llmq_tensor *t);
void *llmq_tensor_data(const llmq_tensor *t);
size_t llmq_tensor_row_stride(const llmq_tensor *t);
size_t llmq_tensor_nbytes(const llmq_tensor *t);
llmq_status llmq_context_set_stream(llmq_context *ctx, void *stream);
llmq_status llmq_context_set_threads(llmq_context *ctx, int32_t threads);
int32_t llmq_context_threads(const llmq_context *ctx);
llmq_status llmq_matmul_pack_weights(llmq_context *ctx, const llmq_tensor *b, const llmq_matmul_options *options, llmq_tensor **packed);
int32_t llmq_tensor_is_packed(const llmq_tensor *t);
llmq_status llmq_context_sync(llmq_context *ctx);
llmq_status llmq_tensor_create_device(llmq_context *ctx, llmq_dtype dtype, int32_t ndim, const int64_t *shape, llmq_tensor **out);
llmq_status llmq_tensor_wrap_device(llmq_context *ctx, llmq_dtype dtype, int32_t ndim, const int64_t *shape, void *data, size_t row_stride, llmq_tensor **out);
llmq_memory llmq_tensor_memory(const llmq_tensor *t);
llmq_status llmq_tensor_copy(llmq_context *ctx, const llmq_tensor *src, llmq_tensor *dst);

llmq_status llmq_scheme_create(llmq_context *ctx, llmq_dtype dtype, llmq_scheme **out);
void llmq_scheme_destroy(llmq_scheme *s);
llmq_status llmq_scheme_set_symmetry(llmq_scheme *s, llmq_symmetry symmetry);
llmq_status llmq_scheme_set_granularity(llmq_scheme *s, llmq_granularity granularity);
llmq_status llmq_scheme_set_axis(llmq_scheme *s, int32_t axis);
llmq_status llmq_scheme_set_group_size(llmq_scheme *s, int64_t group_size);
llmq_status llmq_scheme_set_rounding(llmq_scheme *s, llmq_rounding rounding);
llmq_status llmq_scheme_set_seed(llmq_scheme *s, uint64_t seed);
llmq_status llmq_scheme_set_numerics(llmq_scheme *s, llmq_numerics numerics);
llmq_dtype llmq_scheme_dtype(const llmq_scheme *s);
llmq_symmetry llmq_scheme_symmetry(const llmq_scheme *s);
llmq_granularity llmq_scheme_granularity(const llmq_scheme *s);
int32_t llmq_scheme_axis(const llmq_scheme *s);
int64_t llmq_scheme_group_size(const llmq_scheme *s);
llmq_rounding llmq_scheme_rounding(const llmq_scheme *s);
uint64_t llmq_scheme_seed(const llmq_scheme *s);
llmq_numerics llmq_scheme_numerics(const llmq_scheme *s);
llmq_status llmq_scheme_range(const llmq_scheme *s, int32_t *qmin, int32_t *qmax);
llmq_status llmq_scheme_set_range(llmq_scheme *s, int32_t qmin, int32_t qmax);
llmq_status llmq_scheme_qparams(const llmq_scheme *s, float lo, float hi, float *scale,
    int32_t *zero_point);
llmq_status llmq_tensor_set_scheme(llmq_context *ctx, llmq_tensor *t, const llmq_scheme *scheme);
llmq_status llmq_tensor_create_quantized(llmq_context *ctx, const llmq_scheme *scheme, int32_t ndim,
    const int64_t *shape, llmq_tensor **out);
const llmq_scheme *llmq_tensor_scheme(const llmq_tensor *t);
llmq_tensor *llmq_tensor_scale(const llmq_tensor *t);
llmq_tensor *llmq_tensor_zero_point(const llmq_tensor *t);

llmq_status llmq_quantize(llmq_context *ctx, const llmq_tensor *src, llmq_tensor *dst);
llmq_status llmq_quantize_dynamic(llmq_context *ctx, const llmq_tensor *src, llmq_tensor *dst);
llmq_status llmq_dequantize(llmq_context *ctx, const llmq_tensor *src, llmq_tensor *dst);
llmq_status llmq_pack(llmq_context *ctx, const llmq_tensor *src, llmq_tensor *dst);
llmq_status llmq_unpack(llmq_context *ctx, const llmq_tensor *src, llmq_tensor *dst);
llmq_status llmq_convert(llmq_context *ctx, const llmq_tensor *src, llmq_tensor *dst);

llmq_status llmq_fake_quantize(llmq_context *ctx, const llmq_tensor *x, const llmq_scheme *scheme,
    const llmq_tensor *scale, const llmq_tensor *zero_point, llmq_tensor *y);
llmq_status llmq_fake_quantize_backward(llmq_context *ctx, const llmq_tensor *x,
    const llmq_scheme *scheme, const llmq_tensor *scale, const llmq_tensor *zero_point,
    const llmq_tensor *dy, float grad_factor, llmq_tensor *dx, llmq_tensor *dscale,
    llmq_tensor *dzero_point);

const char *llmq_observer_name(llmq_observer observer);
llmq_status llmq_observer_param_bounds(llmq_observer observer, llmq_observer_param key,
    double *min, double *max);
llmq_status llmq_quantizer_create(llmq_context *ctx, const llmq_scheme *scheme,
    llmq_observer observer, llmq_quantizer **out);
void llmq_quantizer_destroy(llmq_quantizer *q);
llmq_status llmq_quantizer_set_param(llmq_quantizer *q, llmq_observer_param key, double value);
llmq_status llmq_quantizer_get_param(const llmq_quantizer *q, llmq_observer_param key,
    double *value);
llmq_status llmq_quantizer_observe(llmq_context *ctx, llmq_quantizer *q, const llmq_tensor *x);
llmq_status llmq_quantizer_finalize(llmq_context *ctx, llmq_quantizer *q);
llmq_status llmq_quantizer_apply(llmq_context *ctx, const llmq_quantizer *q, llmq_tensor *dst);
const llmq_scheme *llmq_quantizer_scheme(const llmq_quantizer *q);
llmq_observer llmq_quantizer_observer(const llmq_quantizer *q);
int64_t llmq_quantizer_batch_count(const llmq_quantizer *q);
const llmq_tensor *llmq_quantizer_scale(const llmq_quantizer *q);
const llmq_tensor *llmq_quantizer_zero_point(const llmq_quantizer *q);
const llmq_tensor *llmq_quantizer_range(const llmq_quantizer *q);

llmq_status llmq_qtable_create(llmq_context *ctx, llmq_qtable **out);
void llmq_qtable_destroy(llmq_qtable *table);
llmq_status llmq_qtable_set(llmq_context *ctx, llmq_qtable *table, const char *name,
    const llmq_scheme *scheme, const llmq_tensor *scale, const llmq_tensor *zero_point);
llmq_status llmq_qtable_get(llmq_context *ctx, const llmq_qtable *table, const char *name,
    const llmq_scheme **scheme, const llmq_tensor **scale, const llmq_tensor **zero_point);
llmq_status llmq_qtable_apply(llmq_context *ctx, const llmq_qtable *table, const char *name,
    llmq_tensor *dst);
int64_t llmq_qtable_count(const llmq_qtable *table);
const char *llmq_qtable_name_at(const llmq_qtable *table, int64_t index);
llmq_status llmq_qtable_save(llmq_context *ctx, const llmq_qtable *table, const char *path);
llmq_status llmq_qtable_load(llmq_context *ctx, const char *path, llmq_qtable **out);

llmq_status llmq_recipe_load(llmq_context *ctx, const char *path, llmq_recipe **out);
llmq_status llmq_recipe_parse(llmq_context *ctx, const char *text, size_t size,
    const char *source, llmq_recipe **out);
void llmq_recipe_destroy(llmq_recipe *r);
int32_t llmq_recipe_rule_count(const llmq_recipe *r);
llmq_status llmq_recipe_choice_defaults(llmq_recipe_choice *choice, size_t size);
llmq_status llmq_recipe_resolve(llmq_context *ctx, const llmq_recipe *r, const char *tensor_name,
    llmq_recipe_choice *choice);
llmq_status llmq_recipe_create_quantizer(llmq_context *ctx, const llmq_recipe *r,
    const char *tensor_name, llmq_quantizer **out);
void llmq_recipe_choice_clear(llmq_recipe_choice *choice);
llmq_status llmq_recipe_resolve_smoothquant(llmq_context *ctx, const llmq_recipe *r,
    const char *tensor_name, llmq_recipe_smoothquant *out);

llmq_status llmq_smoothquant_channel_absmax(llmq_context *ctx, const llmq_quantizer *q,
    llmq_tensor *absmax);
llmq_status llmq_smoothquant_apply(llmq_context *ctx, const llmq_tensor *act_absmax, float alpha,
    int32_t n_weights, llmq_tensor *const *weights, llmq_tensor *divisor);
llmq_status llmq_smoothquant_search(llmq_context *ctx, const llmq_tensor *x, int32_t n_weights,
    const llmq_tensor *const *weights, const llmq_scheme *weight_scheme,
    const llmq_scheme *activation_scheme, int32_t grid, float *alpha, double *error,
    double *errors);

llmq_status llmq_plan_create(llmq_context *ctx, llmq_plan **out);
void llmq_plan_destroy(llmq_plan *p);
llmq_status llmq_plan_add_candidate(llmq_context *ctx, llmq_plan *p, const char *name,
    const llmq_scheme *scheme);
llmq_status llmq_plan_add_candidates(llmq_context *ctx, llmq_plan *p, const char *list);
llmq_status llmq_plan_add_tensor(llmq_context *ctx, llmq_plan *p, const char *name,
    const llmq_tensor *weight, const llmq_tensor *inputs);
int32_t llmq_plan_candidate_count(const llmq_plan *p);
const char *llmq_plan_candidate_name(const llmq_plan *p, int32_t index);
const llmq_scheme *llmq_plan_candidate_scheme(const llmq_plan *p, int32_t index);
int64_t llmq_plan_tensor_count(const llmq_plan *p);
const char *llmq_plan_tensor_name(const llmq_plan *p, int64_t index);
llmq_status llmq_plan_sensitivity(const llmq_plan *p, int64_t tensor, int32_t candidate,
    double *error, double *sqnr_db, double *bits_per_weight, int32_t *calibrated);
llmq_status llmq_plan_set_objective(llmq_plan *p, llmq_plan_objective objective);
llmq_status llmq_plan_solve(llmq_context *ctx, llmq_plan *p, double budget_bits);
int32_t llmq_plan_choice(const llmq_plan *p, int64_t tensor);
llmq_status llmq_plan_result(const llmq_plan *p, double *objective, double *bits_per_weight,
    int32_t *exact);
llmq_status llmq_plan_write_recipe(llmq_context *ctx, const llmq_plan *p, const char *path);

llmq_status llmq_matmul_options_defaults(llmq_matmul_options *options, size_t size);
llmq_status llmq_matmul(llmq_context *ctx, const llmq_tensor *a, const llmq_tensor *b,
    const llmq_tensor *bias, llmq_tensor *c);
llmq_status llmq_matmul_with_options(llmq_context *ctx, const llmq_tensor *a, const llmq_tensor *b,
    const llmq_tensor *bias, llmq_tensor *c, const llmq_matmul_options *options);
llmq_status llmq_matmul_outlier(llmq_context *ctx, const llmq_tensor *a, const llmq_tensor *b,
    const llmq_tensor *bias, llmq_tensor *c, const llmq_scheme *activation_scheme,
    float threshold, int64_t *outlier_count);

llmq_status llmq_model_open(llmq_context *ctx, const char *path, llmq_model **out);
void llmq_model_destroy(llmq_model *m);
llmq_model_format llmq_model_get_format(const llmq_model *m);
int64_t llmq_model_tensor_count(const llmq_model *m);
const char *llmq_model_tensor_name(const llmq_model *m, int64_t index);
const char *llmq_model_tensor_file_dtype(const llmq_model *m, int64_t index);
llmq_status llmq_model_tensor_shape(const llmq_model *m, int64_t index, int32_t *ndim,
    int64_t *shape, int32_t capacity);
llmq_status llmq_model_tensor(llmq_context *ctx, const llmq_model *m, const char *name,
    llmq_tensor **out);
llmq_status llmq_model_evict(llmq_context *ctx, const llmq_model *m, const char *name);
int64_t llmq_model_metadata_count(const llmq_model *m);
const char *llmq_model_metadata_key(const llmq_model *m, int64_t index);
const char *llmq_model_metadata_value(const llmq_model *m, int64_t index);
const char *llmq_model_metadata(const llmq_model *m, const char *key);
llmq_status llmq_model_writer_create(llmq_context *ctx, const char *path, llmq_model_writer **out);
llmq_status llmq_model_writer_set_metadata(llmq_context *ctx, llmq_model_writer *w, const char *key,
    const char *value);
llmq_status llmq_model_writer_declare(llmq_context *ctx, llmq_model_writer *w, const char *name,
    llmq_dtype dtype, int32_t ndim, const int64_t *shape, const llmq_scheme *scheme);
llmq_status llmq_model_writer_write(llmq_context *ctx, llmq_model_writer *w, const char *name,
    const llmq_tensor *t);
llmq_status llmq_model_writer_finish(llmq_context *ctx, llmq_model_writer *w);
void llmq_model_writer_destroy(llmq_model_writer *w);
"""

# Enum values, by the names the docs and safetensors metadata use (include/llmq/*.h).
DTYPES = {"f32": 0, "f16": 1, "bf16": 2, "s8": 3, "u8": 4, "s4": 5, "u4": 6, "s2": 7, "u2": 8,
          "s32": 9}
SYMMETRY = {"symmetric": 0, "symmetric_restricted": 1, "asymmetric": 2}
GRANULARITY = {"per_tensor": 0, "per_channel": 1, "per_group": 2, "per_token": 3}
ROUNDING = {"half_even": 0, "half_away": 1, "stochastic": 2}
NUMERICS = {"pytorch": 0, "onnx": 1}
CPU_ISA = {"default": 0, "scalar": 1, "avx2": 2, "avxvnni": 3, "avx512": 4}
WEIGHT_LAYOUT = {"nk": 0, "kn": 1}
REQUANT = {"exact": 0, "multiplier": 1}
MODEL_FORMAT = {"safetensors": 0, "llama2c": 1}
OBSERVER = {"minmax": 0, "moving_average": 1, "percentile": 2, "entropy": 3, "histogram_l2": 4,
            "mse": 5}
OBSERVER_PARAM = {"momentum": 0, "percentile": 1, "bins": 2, "grid": 3, "upsample": 4}
ACTIVATION_MODE = {"float": 0, "dynamic": 1, "static": 2}
PLAN_OBJECTIVE = {"sum": 0, "size_weighted": 1}
MEMORY = {"host": 0, "device": 1}
#: Each C enum's tables above: (prefix of its enumerators, table); the test of the header
#: checks every enumerator (but *_FORCE32_) against them. llmq_status maps to _ERRORS.
ENUM_TABLES = {"llmq_cpu_isa": ("LLMQ_CPU_ISA_", CPU_ISA), "llmq_dtype": ("LLMQ_DTYPE_", DTYPES),
               "llmq_symmetry": ("LLMQ_SYMMETRY_", SYMMETRY),
               "llmq_granularity": ("LLMQ_GRANULARITY_", GRANULARITY),
               "llmq_rounding": ("LLMQ_ROUNDING_", ROUNDING),
               "llmq_numerics": ("LLMQ_NUMERICS_", NUMERICS),
               "llmq_weight_layout": ("LLMQ_WEIGHT_LAYOUT_", WEIGHT_LAYOUT),
               "llmq_requant": ("LLMQ_REQUANT_", REQUANT),
               "llmq_model_format": ("LLMQ_MODEL_FORMAT_", MODEL_FORMAT),
               "llmq_observer": ("LLMQ_OBSERVER_", OBSERVER),
               "llmq_observer_param": ("LLMQ_OBSERVER_PARAM_", OBSERVER_PARAM),
               "llmq_plan_objective": ("LLMQ_PLAN_OBJECTIVE_", PLAN_OBJECTIVE),
               "llmq_activation_mode": ("LLMQ_ACTIVATION_", ACTIVATION_MODE),
               "llmq_memory": ("LLMQ_MEMORY_", MEMORY)}

_BITS = {"f32": 32, "f16": 16, "bf16": 16, "s8": 8, "u8": 8, "s4": 4, "u4": 4, "s2": 2, "u2": 2,
         "s32": 32}
# NumPy element type of each dtype's memory: bf16 as its uint16 bit pattern, sub-byte dtypes
# as their packed bytes
_NP_DTYPE = {"f32": np.float32, "f16": np.float16, "bf16": np.uint16, "s8": np.int8,
             "u8": np.uint8, "s4": np.uint8, "u4": np.uint8, "s2": np.uint8, "u2": np.uint8,
             "s32": np.int32}
_FROM_NP = {np.dtype(np.float32): "f32", np.dtype(np.float16): "f16", np.dtype(np.int8): "s8",
            np.dtype(np.uint8): "u8", np.dtype(np.int32): "s32"}
_QUANTIZED = ("s8", "u8", "s4", "u4", "s2", "u2")
_FLOATS = ("f32", "f16", "bf16")
MAX_DIMS = 4  # LLMQ_MAX_DIMS


# ------------------------------------------------------------------------------------------
# Prototype text -> ctypes

_SCALARS = {
    "char": ctypes.c_char, "float": ctypes.c_float, "double": ctypes.c_double,
    "int": ctypes.c_int, "int8_t": ctypes.c_int8, "uint8_t": ctypes.c_uint8,
    "int16_t": ctypes.c_int16, "uint16_t": ctypes.c_uint16, "int32_t": ctypes.c_int32,
    "uint32_t": ctypes.c_uint32, "int64_t": ctypes.c_int64, "uint64_t": ctypes.c_uint64,
    "size_t": ctypes.c_size_t,
}
_DECL = re.compile(r"\s*(?:const\s+)?(\w+)\s*((?:\*\s*(?:const\b\s*)?)*)(\w+)?\s*")
_PROTO = re.compile(r"(.+?)\b(llmq_\w+)\s*\((.*?)\)\s*;", re.S)


def ctype_of(decl):
    """The ctypes type of a C declaration such as 'const int64_t *shape' (None for void)."""
    m = _DECL.fullmatch(decl)
    if m is None:
        raise ValueError(f"llmq.py: cannot read the C declaration {decl!r}")
    base, stars = m.group(1), m.group(2).count("*")
    if base == "char" and stars >= 1:
        t, stars = ctypes.c_char_p, stars - 1
    elif base == "void":
        if stars == 0:
            return None
        t, stars = ctypes.c_void_p, stars - 1
    elif base in _OPAQUE:
        if stars == 0:
            raise ValueError(f"llmq.py: opaque type {base} used by value in {decl!r}")
        t = _OPAQUE[base]
    elif base in ENUMS:
        t = ctypes.c_int32
    elif base in STRUCTS:
        t = STRUCTS[base]
    elif base in _SCALARS:
        t = _SCALARS[base]
    else:
        raise ValueError(f"llmq.py: unknown C type {base} in {decl!r}: add it to HANDLES, "
                         "ENUMS or STRUCTS")
    for _ in range(stars):
        t = ctypes.POINTER(t)
    return t


def prototypes(text=None):
    """{name: (restype, [argtypes])} of the C prototypes in `text` (default PROTOTYPES)."""
    out = {}
    for m in _PROTO.finditer(PROTOTYPES if text is None else text):
        ret, name, args = m.group(1), m.group(2), m.group(3).strip()
        params = [] if args in ("", "void") else [ctype_of(a) for a in args.split(",")]
        out[name] = (ctype_of(ret), params)
    return out


class _Library:
    """The loaded libllmq: one attribute per function of PROTOTYPES, typed."""

    def __init__(self, path):
        self.path = path
        self.cdll = ctypes.CDLL(path)
        for name, (restype, argtypes) in prototypes().items():
            fn = getattr(self.cdll, name)
            fn.restype, fn.argtypes = restype, argtypes
            setattr(self, name, fn)


_lib = None
_lib_lock = threading.Lock()


def _candidates():
    env = os.environ.get("LLMQ_LIB")
    if env:
        return [env]
    found = ["libllmq.so.0"]  # the loader's search path (LD_LIBRARY_PATH, ld.so.cache)
    name = ctypes.util.find_library("llmq")
    if name:
        found.append(name)
    for d in ("/usr/local/lib/x86_64-linux-gnu", "/usr/local/lib", "/usr/lib/x86_64-linux-gnu",
              "/usr/local/lib64", "/usr/lib"):
        found.append(os.path.join(d, "libllmq.so.0"))
    here = pathlib.Path(__file__).resolve().parent
    if len(here.parents) >= 2:  # examples/python/llmq.py in a source tree with build dirs
        found += [str(p) for p in sorted(here.parents[1].glob("build*/lib/libllmq.so.0"))]
    return found


def load(path=None):
    """Load libllmq now: from `path`, else as described in the module docstring. Returns the
    library object; loading again with another path raises RuntimeError."""
    global _lib
    with _lib_lock:
        if _lib is not None:
            if path is not None and os.path.realpath(path) != os.path.realpath(_lib.path):
                raise RuntimeError(f"llmq: {_lib.path} is already loaded")
            return _lib
        errors = []
        for candidate in [path] if path is not None else _candidates():
            try:
                _lib = _Library(candidate)
                return _lib
            except OSError as e:
                errors.append(f"{candidate}: {e}")
        raise OSError("llmq: cannot load libllmq.so.0 (set LLMQ_LIB to its path):\n  " +
                      "\n  ".join(errors))


def library():
    """The loaded library (loading it on first use); its attributes are the C functions."""
    return _lib if _lib is not None else load()


def __getattr__(name):  # llmq.lib: the library, loaded on first use (PEP 562)
    if name == "lib":
        return library()
    raise AttributeError(f"module 'llmq' has no attribute {name!r}")


def _str(b):
    return b.decode("utf-8", "replace") if b is not None else None


def version():
    """Version string of the loaded library, e.g. '0.1.0'."""
    return _str(library().llmq_version_string())


def version_number():
    """MAJOR * 10000 + MINOR * 100 + PATCH of the loaded library."""
    return library().llmq_version_number()


def build_info():
    """What the loaded library was built with (backends, CPU tiers, CUDA archs, compiler)."""
    return _str(library().llmq_build_info())


def status_name(status):
    """Name of a status code, e.g. 'LLMQ_ERR_INVALID_ARG'."""
    return _str(library().llmq_status_name(status))


# ------------------------------------------------------------------------------------------
# Errors


class LlmqError(Exception):
    """A call returned a status other than LLMQ_OK.

    status: the llmq_status value; status_name: its name; function: the C function called;
    message: llmq_context_last_error() right after the failure ("" when there is none)."""

    def __init__(self, status, function, message):
        self.status, self.function, self.message = status, function, message
        self.status_name = status_name(status)
        super().__init__(f"{self.status_name}: {message or function}")


class InvalidArgError(LlmqError, ValueError):
    """LLMQ_ERR_INVALID_ARG: the message names the argument and the rule it broke."""


class OutOfMemoryError(LlmqError, MemoryError):
    """LLMQ_ERR_OUT_OF_MEMORY."""


class UnsupportedError(LlmqError):
    """LLMQ_ERR_UNSUPPORTED: valid, but this build or machine cannot serve it."""


class BackendError(LlmqError):
    """LLMQ_ERR_BACKEND: a device or driver failure."""


class FileError(LlmqError, OSError):
    """LLMQ_ERR_IO: reading or writing a file failed."""


class ParseError(LlmqError, ValueError):
    """LLMQ_ERR_PARSE: a malformed recipe, table or model file."""


class StateError(LlmqError, RuntimeError):
    """LLMQ_ERR_STATE: a call in the wrong order."""


class AbiError(LlmqError):
    """LLMQ_ERR_ABI: a bad `size` or non-zero reserved field in an options struct."""


class InternalError(LlmqError, RuntimeError):
    """LLMQ_ERR_INTERNAL: a bug in llmq."""


class NonFiniteError(LlmqError, ValueError):
    """LLMQ_ERR_NON_FINITE: a NaN in data to quantize; the message gives its flat index."""


_ERRORS = {1: InvalidArgError, 2: OutOfMemoryError, 3: UnsupportedError, 4: BackendError,
           5: FileError, 6: ParseError, 7: StateError, 8: AbiError, 9: InternalError,
           10: NonFiniteError}


def _raise(status, function, ctx_ptr):
    message = _str(library().llmq_context_last_error(ctx_ptr)) if ctx_ptr else ""
    raise _ERRORS.get(status, LlmqError)(status, function, message)


# ------------------------------------------------------------------------------------------
# Handles and their lifetimes


_tree_lock = threading.RLock()  # guards every _Resource (views die on any thread)


class _Resource:
    """One C handle in a tree that mirrors the C ownership rules: a handle is destroyed only
    after the handles made from it (its children) and after the NumPy views of its memory.
    The tree is kept apart from the Python objects, so that the order of destruction never
    depends on the garbage collector (which finalizes the members of a cycle in any order)."""

    __slots__ = ("ptr", "destroy", "parents", "children", "views", "closing", "keep")

    def __init__(self, ptr, destroy, parents, keep=None):
        self.ptr, self.destroy, self.children, self.views = ptr, destroy, {}, 0
        self.closing, self.keep = False, keep  # keep: what the C object uses until destroyed
        self.parents = list(parents)
        with _tree_lock:
            for p in self.parents:
                if p.closing:
                    raise ValueError("llmq: the object this depends on is closed")
            for p in self.parents:
                p.children[id(self)] = self

    def add_view(self, view):
        """Keep this handle until `view` (an object NumPy holds as an array's base) dies."""
        with _tree_lock:
            self.views += 1
        weakref.finalize(view, self._view_gone)

    def _view_gone(self):
        with _tree_lock:
            self.views -= 1
            self._free_if_done()

    def close(self):
        """Destroy this handle and its subtree, each as soon as nothing depends on it."""
        with _tree_lock:
            todo = [self]
            while todo:
                r = todo.pop()
                r.closing = True
                todo.extend(r.children.values())
            self._free_if_done()

    def _free_if_done(self):
        if not self.closing or self.ptr is None:
            return
        for child in list(self.children.values()):
            child._free_if_done()
        if self.children or self.views or self.ptr is None:
            return
        ptr, self.ptr = self.ptr, None
        if self.destroy is not None:
            self.destroy(ptr)
        self.keep = None
        parents, self.parents = self.parents, []
        for p in parents:
            p.children.pop(id(self), None)
            p._free_if_done()  # a closed parent that waited for this child


class Handle:
    """Base of the wrapped C handles. Subclasses set `_destroy` to the name of the C function
    that frees the handle (None for a handle borrowed from another object, e.g. the scale
    tensor of a quantized tensor).

    close() ends the object's use from Python at once; the C object is destroyed after
    everything made from it and after the last NumPy view of its memory."""

    _destroy = None
    _res = None

    def _adopt(self, ptr, parents, ctx, keep=None):
        """Own `ptr`; `parents` are the Handles that must outlive it (and close it first);
        `keep` what the C object uses until it is destroyed (callbacks, wrapped memory)."""
        destroy = getattr(library(), self._destroy) if self._destroy else None
        try:
            self._res = _Resource(ptr, destroy, [p._res for p in parents], keep)
        except BaseException:
            if destroy is not None:
                destroy(ptr)
            raise
        self._parents = tuple(parents)  # strong references: they outlive this handle
        self._ctx = None if ctx is self else ctx  # a context is its own (no reference cycle)

    @property
    def ptr(self):
        """The C pointer; ValueError once closed."""
        res = self._res
        if res is None or res.closing:
            raise ValueError(f"llmq: {type(self).__name__} is closed")
        return res.ptr

    @property
    def closed(self):
        return self._res is None or self._res.closing

    @property
    def context(self):
        """The Context this object was made with."""
        return self if self._ctx is None else self._ctx

    def close(self):
        """Close this object and everything made from it. Idempotent."""
        if self._res is not None:
            self._res.close()

    def __del__(self):
        if self._res is not None and _lib is not None:
            self._res.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _call(ctx, name, *args):
    """Call C function `name`; raise the LlmqError of its status with ctx's message."""
    fn = getattr(library(), name)
    if ctx is None:
        status = fn(*args)
        if status:
            _raise(status, name, None)
        return
    with ctx._lock:
        status = fn(*args)
        if status:
            _raise(status, name, ctx.ptr)


def _enum(table, value, what):
    if isinstance(value, str):
        try:
            return table[value.lower()]
        except KeyError:
            raise ValueError(f"llmq: {what}={value!r}: expected one of {', '.join(table)}")
    return int(value)


def _enum_name(table, value):
    for k, v in table.items():
        if v == value:
            return k
    return value


def _shape_array(shape):
    shape = tuple(int(d) for d in shape)
    return len(shape), (ctypes.c_int64 * max(len(shape), 1))(*shape)


class Context(Handle):
    """llmq_context: backend, CPU tier, allocator and the last error message.

    backend: "auto", "cpu", "cuda" or None ($LLMQ_BACKEND, else "auto"); max_isa: cap on the
    CPU tier ("scalar", "avx2", "avxvnni", "avx512"); allocator: an object with
    alloc(size, alignment) -> address (0 on failure) and free(address) methods, used for all of
    the context's memory (kept alive by the context)."""

    _destroy = "llmq_context_destroy"

    def __init__(self, backend=None, *, max_isa=None, allocator=None):
        lib = library()
        opts = ContextOptions()
        _call(None, "llmq_context_options_defaults", ctypes.byref(opts), ctypes.sizeof(opts))
        opts.backend = backend.encode() if backend is not None else None
        opts.max_isa = _enum(CPU_ISA, max_isa or 0, "max_isa")
        self._allocator = None
        if allocator is not None:
            self._allocator = (
                ALLOC_FN(lambda _user, size, align: allocator.alloc(size, align) or None),
                FREE_FN(lambda _user, p: allocator.free(p) if p else None), allocator)
            opts.allocator.alloc, opts.allocator.free = self._allocator[:2]
        self._lock = threading.RLock()
        ptr = ctypes.POINTER(_OPAQUE["llmq_context"])()
        status = lib.llmq_context_create_with_options(ctypes.byref(ptr), ctypes.byref(opts))
        if status:
            try:
                _raise(status, "llmq_context_create_with_options", ptr)
            finally:
                lib.llmq_context_destroy(ptr)  # a failed context still owns memory
        self._adopt(ptr, (), self, keep=self._allocator)

    @property
    def backend_name(self):
        """e.g. "cpu-scalar"."""
        return _str(library().llmq_context_backend_name(self.ptr))

    @property
    def threads(self):
        """Threads of the context's kernels (results do not depend on it)."""
        return library().llmq_context_threads(self.ptr)

    @threads.setter
    def threads(self, n):
        _call(self, "llmq_context_set_threads", self.ptr, int(n))

    @property
    def cpu_isa(self):
        """CPU tier in use, e.g. "avx2"."""
        return _str(library().llmq_cpu_isa_name(library().llmq_context_cpu_isa(self.ptr)))

    @property
    def host_isa(self):
        """Best CPU tier of the host."""
        return _str(library().llmq_cpu_isa_name(library().llmq_context_host_isa(self.ptr)))

    @property
    def last_error(self):
        """llmq_context_last_error(): message of the last failure on this context."""
        return _str(library().llmq_context_last_error(self.ptr))

    def tensor(self, array, dtype=None, shape=None):
        """Tensor.wrap(self, ...)."""
        return Tensor.wrap(self, array, dtype, shape)

    def empty(self, dtype, shape):
        """Tensor.empty(self, ...)."""
        return Tensor.empty(self, dtype, shape)

    def sync(self):
        """Wait for the context's device work (llmq_context_sync); a no-op on the CPU."""
        _call(self, "llmq_context_sync", self.ptr)

    def set_stream(self, stream):
        """Order device work on a cudaStream_t given as an integer address (0: default)."""
        _call(self, "llmq_context_set_stream", self.ptr, ctypes.c_void_p(stream or None))

    def scheme(self, dtype, **settings):
        """Scheme(self, ...)."""
        return Scheme(self, dtype, **settings)

    def open_model(self, path):
        """Model(self, path)."""
        return Model(self, path)

    def quantizer(self, scheme, observer="minmax", **params):
        """Quantizer(self, ...)."""
        return Quantizer(self, scheme, observer, **params)

    def __repr__(self):
        return "<llmq.Context closed>" if self.closed else f"<llmq.Context {self.backend_name}>"


class Scheme(Handle):
    """llmq_scheme: dtype, symmetry, granularity, axis, group size, rounding, seed, numerics.

    Settings are keywords of the constructor and writable attributes; enum values are the
    lower-case names of DTYPES, SYMMETRY, GRANULARITY, ROUNDING and NUMERICS. `range` is the
    integer grid (qmin, qmax): setting it narrows the dtype's grid (s4 with (-4, 3) is a 3-bit
    grid, PyTorch's quant_min / quant_max); None clears it."""

    _destroy = "llmq_scheme_destroy"
    _readonly = False

    def __init__(self, ctx, dtype, *, symmetry=None, granularity=None, axis=None,
                 group_size=None, rounding=None, seed=None, numerics=None, range=None):
        ptr = ctypes.POINTER(_OPAQUE["llmq_scheme"])()
        _call(ctx, "llmq_scheme_create", ctx.ptr, _enum(DTYPES, dtype, "dtype"), ctypes.byref(ptr))
        self._adopt(ptr, (ctx,), ctx)
        settings = dict(symmetry=symmetry, granularity=granularity, axis=axis,
                        group_size=group_size, rounding=rounding, seed=seed, numerics=numerics,
                        range=range)
        for key, value in settings.items():
            if value is not None:
                setattr(self, key, value)

    @classmethod
    def _borrow(cls, ptr, owner):
        """A scheme owned by another object (a tensor, quantizer or table entry): read-only."""
        s = cls.__new__(cls)
        s._readonly, s._destroy = True, None
        s._adopt(ptr, (owner,), owner.context)
        return s

    @classmethod
    def _own(cls, ptr, ctx):
        """A scheme the C API handed over (llmq_recipe_resolve): destroyed with this object."""
        s = cls.__new__(cls)
        s._adopt(ptr, (ctx,), ctx)
        return s

    def _set(self, fn, value):
        if self._readonly:
            raise AttributeError("llmq: a scheme owned by another object (the scheme bound to "
                                 "a tensor, a quantizer's, a table entry's) is read-only")
        _call(self._ctx, fn, self.ptr, value)

    def _get(self, fn):
        return getattr(library(), fn)(self.ptr)

    dtype = property(lambda s: _enum_name(DTYPES, s._get("llmq_scheme_dtype")),
                     doc="Quantized dtype name, e.g. 's4'.")
    symmetry = property(
        lambda s: _enum_name(SYMMETRY, s._get("llmq_scheme_symmetry")),
        lambda s, v: s._set("llmq_scheme_set_symmetry", _enum(SYMMETRY, v, "symmetry")))
    granularity = property(
        lambda s: _enum_name(GRANULARITY, s._get("llmq_scheme_granularity")),
        lambda s, v: s._set("llmq_scheme_set_granularity", _enum(GRANULARITY, v, "granularity")))
    axis = property(lambda s: s._get("llmq_scheme_axis"),
                    lambda s, v: s._set("llmq_scheme_set_axis", int(v)))
    group_size = property(lambda s: s._get("llmq_scheme_group_size"),
                          lambda s, v: s._set("llmq_scheme_set_group_size", int(v)))
    rounding = property(
        lambda s: _enum_name(ROUNDING, s._get("llmq_scheme_rounding")),
        lambda s, v: s._set("llmq_scheme_set_rounding", _enum(ROUNDING, v, "rounding")))
    seed = property(lambda s: s._get("llmq_scheme_seed"),
                    lambda s, v: s._set("llmq_scheme_set_seed", int(v)))
    numerics = property(
        lambda s: _enum_name(NUMERICS, s._get("llmq_scheme_numerics")),
        lambda s, v: s._set("llmq_scheme_set_numerics", _enum(NUMERICS, v, "numerics")))

    @property
    def range(self):
        """(qmin, qmax) of the integer grid: the dtype's (restricted: without its lowest code),
        or the one set here. Settable: (qmin, qmax) inside the dtype's grid, including 0 for
        signed dtypes; None (or (0, 0)) restores the dtype's grid."""
        lo, hi = ctypes.c_int32(), ctypes.c_int32()
        _call(self._ctx, "llmq_scheme_range", self.ptr, ctypes.byref(lo), ctypes.byref(hi))
        return lo.value, hi.value

    @range.setter
    def range(self, value):
        if self._readonly:
            raise AttributeError("llmq: a scheme owned by another object is read-only")
        qmin, qmax = (0, 0) if value is None else (int(v) for v in value)
        _call(self._ctx, "llmq_scheme_set_range", self.ptr, qmin, qmax)

    def qparams(self, lo, hi):
        """(scale, zero_point) for the observed range [lo, hi] (PyTorch's rules)."""
        scale, zp = ctypes.c_float(), ctypes.c_int32()
        _call(self._ctx, "llmq_scheme_qparams", self.ptr, float(lo), float(hi),
              ctypes.byref(scale), ctypes.byref(zp))
        return scale.value, zp.value

    def __repr__(self):
        if self.closed:
            return "<llmq.Scheme closed>"
        return (f"<llmq.Scheme {self.dtype} {self.symmetry} {self.granularity} axis={self.axis}"
                f" group_size={self.group_size} {self.rounding} {self.numerics}"
                f" range={self.range}>")


class _ArrayView:
    """Gives NumPy a view of C memory (NumPy keeps it as the array's base); the tensor's
    _Resource outlives it."""

    __slots__ = ("__array_interface__", "__weakref__")

    def __init__(self, interface):
        self.__array_interface__ = interface


def _stored_shape(dtype, shape):
    """Shape of the NumPy array holding a tensor: sub-byte rows as packed bytes."""
    if not shape or _BITS[dtype] >= 8:
        return tuple(shape)
    return tuple(shape[:-1]) + ((shape[-1] * _BITS[dtype] + 7) // 8,)


class Tensor(Handle):
    """llmq_tensor: made by Tensor.wrap() (a NumPy array viewed without copying),
    Tensor.empty() (memory owned by the tensor), empty_quantized(), a Model, or returned by
    the operations below. np.asarray(t) and t.numpy() view its memory without copying."""

    _destroy = "llmq_tensor_destroy"
    _array = None
    _writable = True

    def __init__(self, *_args, **_kwargs):
        raise TypeError("llmq: make tensors with Tensor.wrap(), Tensor.empty() or llmq.tensor()")

    @classmethod
    def _adopt_ptr(cls, ptr, parents, ctx, destroy=True, array=None, writable=True):
        t = cls.__new__(cls)
        if not destroy:
            t._destroy = None
        t._adopt(ptr, parents, ctx, keep=array)
        t._array, t._writable = array, writable
        return t

    @classmethod
    def wrap(cls, ctx, array, dtype=None, shape=None):
        """View `array` as a tensor, without copying; the tensor keeps the array alive.

        The array must be a NumPy array in native byte order, with contiguous rows (its last
        axis contiguous and the others compact, as for a C-contiguous array or a slice of
        columns of one, `big[:, :k]`). dtype: None infers f32 / f16 / s8 / u8 / s32 from the
        NumPy type; "bf16" takes a uint16 array of bit patterns; "s4", "u4", "s2", "u2" take a
        uint8 array of packed bytes, with `shape` the logical shape (last axis in elements)."""
        if not isinstance(array, np.ndarray):
            raise TypeError(f"llmq: expected a numpy.ndarray, got {type(array).__name__}")
        if not array.dtype.isnative:
            raise TypeError("llmq: the array must be in native byte order")
        if dtype is None:
            dtype = _FROM_NP.get(array.dtype)
            if dtype is None:
                raise TypeError(f"llmq: numpy dtype {array.dtype} has no llmq dtype (f32, f16, "
                                "s8, u8, s32; bf16 as uint16 with dtype='bf16', sub-byte "
                                "dtypes as packed uint8); convert it, e.g. .astype(np.float32)")
        dtype = _enum_name(DTYPES, _enum(DTYPES, dtype, "dtype"))
        want = np.dtype(_NP_DTYPE[dtype])
        if array.dtype != want and not (dtype == "bf16" and array.dtype.itemsize == 2 and
                                        array.dtype.name == "bfloat16"):
            raise TypeError(f"llmq: dtype {dtype} needs a {want} array, got {array.dtype}")
        if shape is None:
            if _BITS[dtype] < 8:
                raise ValueError(f"llmq: a packed {dtype} array needs shape= (the logical shape)")
            shape = array.shape
        shape = tuple(int(d) for d in shape)
        stored = _stored_shape(dtype, shape)
        if array.shape != stored:
            raise ValueError(f"llmq: array shape {array.shape} does not hold {dtype} {shape}"
                             + (f" (packed: {stored})" if stored != shape else ""))
        row_stride = _row_stride(array)
        ndim, c_shape = _shape_array(shape)
        ptr = ctypes.POINTER(_OPAQUE["llmq_tensor"])()
        _call(ctx, "llmq_tensor_wrap", ctx.ptr, DTYPES[dtype], ndim, c_shape,
              ctypes.c_void_p(array.ctypes.data), row_stride, ctypes.byref(ptr))
        return cls._adopt_ptr(ptr, (ctx,), ctx, array=array, writable=array.flags.writeable)

    @classmethod
    def empty(cls, ctx, dtype, shape):
        """A tensor that owns zeroed memory (llmq_tensor_create)."""
        ndim, c_shape = _shape_array(shape)
        ptr = ctypes.POINTER(_OPAQUE["llmq_tensor"])()
        _call(ctx, "llmq_tensor_create", ctx.ptr, _enum(DTYPES, dtype, "dtype"), ndim, c_shape,
              ctypes.byref(ptr))
        return cls._adopt_ptr(ptr, (ctx,), ctx)

    @classmethod
    def empty_device(cls, ctx, dtype, shape):
        """A tensor in the device memory of a CUDA context (llmq_tensor_create_device)."""
        ndim, c_shape = _shape_array(shape)
        ptr = ctypes.POINTER(_OPAQUE["llmq_tensor"])()
        _call(ctx, "llmq_tensor_create_device", ctx.ptr, _enum(DTYPES, dtype, "dtype"), ndim,
              c_shape, ctypes.byref(ptr))
        return cls._adopt_ptr(ptr, (ctx,), ctx)

    @property
    def memory(self):
        """"host" or "device"."""
        return _enum_name(MEMORY, library().llmq_tensor_memory(self.ptr))

    @property
    def dtype(self):
        """dtype name, e.g. "f32" or "u4"."""
        return _enum_name(DTYPES, library().llmq_tensor_dtype(self.ptr))

    @property
    def shape(self):
        """Logical shape (sub-byte dtypes: in elements, not bytes)."""
        lib, p = library(), self.ptr
        return tuple(lib.llmq_tensor_dim(p, i) for i in range(lib.llmq_tensor_ndim(p)))

    ndim = property(lambda t: library().llmq_tensor_ndim(t.ptr))
    numel = property(lambda t: library().llmq_tensor_numel(t.ptr))
    row_stride = property(lambda t: library().llmq_tensor_row_stride(t.ptr),
                          doc="Bytes between rows.")
    nbytes = property(lambda t: library().llmq_tensor_nbytes(t.ptr))

    @property
    def scheme(self):
        """The scheme bound to a quantized tensor (read-only), or None."""
        p = library().llmq_tensor_scheme(self.ptr)
        return Scheme._borrow(p, self) if p else None

    def _param(self, fn):
        p = getattr(library(), fn)(self.ptr)
        if not p:
            return None
        return Tensor._adopt_ptr(p, (self,), self._ctx, destroy=False).numpy()

    @property
    def scale(self):
        """Writable NumPy view (float32) of the scale tensor of a quantized tensor, or None."""
        return self._param("llmq_tensor_scale")

    @property
    def zero_point(self):
        """Writable NumPy view (int32) of the zero-point tensor, or None."""
        return self._param("llmq_tensor_zero_point")

    def set_scheme(self, scheme):
        """Bind a copy of `scheme` (and fresh parameter tensors) to this quantized tensor."""
        _call(self._ctx, "llmq_tensor_set_scheme", self._ctx.ptr, self.ptr, scheme.ptr)

    def numpy(self):
        """The tensor's memory as a NumPy array, without copying: float32 / float16 / int8 /
        uint8 / int32; bf16 as uint16 bit patterns; sub-byte dtypes as packed uint8 rows. A
        wrapped array is returned as itself."""
        if self._array is not None:
            return self._array
        lib, p = library(), self.ptr
        if lib.llmq_tensor_memory(p) == MEMORY["device"]:  # reading it here would crash
            raise UnsupportedError("Tensor.numpy: a device tensor; copy it to a host tensor "
                                   "with llmq.copy(src, dst) first")
        dtype, shape = self.dtype, self.shape
        stored = _stored_shape(dtype, shape)
        item = np.dtype(_NP_DTYPE[dtype])
        strides = [item.itemsize]
        if len(stored) >= 2:
            strides.insert(0, lib.llmq_tensor_row_stride(p))
        for d in reversed(stored[1:-1]):
            strides.insert(0, strides[0] * d)
        view = _ArrayView({"version": 3, "shape": stored, "typestr": item.str,
                           "strides": tuple(strides),
                           "data": (lib.llmq_tensor_data(p), not self._writable)})
        self._res.add_view(view)
        return np.asarray(view)

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def __repr__(self):
        if self.closed:
            return "<llmq.Tensor closed>"
        return f"<llmq.Tensor {self.dtype} {list(self.shape)}>"


def _row_stride(array):
    """Bytes between rows of an array with contiguous, compact rows; 0 for 1-D."""
    s, n = array.strides, array.shape
    if array.ndim == 0:
        return 0  # llmq_tensor_wrap reports the bad ndim
    if not array.flags.aligned:
        raise ValueError("llmq: the array's data is not aligned for its dtype")
    if n[-1] > 1 and s[-1] != array.itemsize:
        raise ValueError("llmq: the array's last axis is not contiguous; use "
                         "np.ascontiguousarray()")
    # rows (all axes but the last, flattened) must be evenly spaced: axis i steps over
    # prod(n[i+1:-1]) rows (axes of size 1 have arbitrary strides in NumPy)
    inner = [int(np.prod(n[i + 1:-1])) for i in range(array.ndim - 1)]
    row_stride = None
    for i in range(array.ndim - 2, -1, -1):
        if n[i] > 1:
            row_stride = s[i] // inner[i]
            break
    if row_stride is None:
        return 0  # a single row
    if any(n[i] > 1 and s[i] != row_stride * inner[i] for i in range(array.ndim - 1)):
        raise ValueError("llmq: only the rows (the last-but-one axis) may be strided; use "
                         "np.ascontiguousarray()")
    row_bytes = n[-1] * array.itemsize
    if row_stride < row_bytes:
        raise ValueError(f"llmq: rows are {row_stride} bytes apart, less than a row "
                         f"({row_bytes} bytes)")
    return row_stride


# ------------------------------------------------------------------------------------------
# Operations. `ctx` defaults to the context of the first Tensor or Scheme argument; NumPy
# arrays are wrapped without copying for the duration of the call.


def _context_of(ctx, *objs):
    if ctx is not None:
        return ctx
    for o in objs:
        if isinstance(o, Handle):
            return o.context
    raise ValueError("llmq: pass ctx= (no argument is a Tensor or Scheme)")


class _Args:
    """Tensors for one call: wraps NumPy arrays, closes those wrappers afterwards."""

    def __init__(self, ctx):
        self.ctx, self.temps = ctx, []

    def __call__(self, x, name, writable=False):
        if x is None or isinstance(x, Tensor):
            t = x
        elif isinstance(x, np.ndarray):
            t = Tensor.wrap(self.ctx, x)
            self.temps.append(t)
        else:
            raise TypeError(f"llmq: {name} must be a Tensor or numpy.ndarray, got "
                            f"{type(x).__name__}")
        if writable and t is not None and not t._writable:
            raise ValueError(f"llmq: {name} is read-only")
        return t

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for t in self.temps:
            t.close()


def tensor(ctx, array, dtype=None, shape=None):
    """Tensor.wrap(ctx, array, dtype, shape): a view of a NumPy array, no copy."""
    return Tensor.wrap(ctx, array, dtype, shape)


def empty(ctx, dtype, shape):
    """Tensor.empty(ctx, dtype, shape): zeroed memory owned by the tensor."""
    return Tensor.empty(ctx, dtype, shape)


def empty_quantized(scheme, shape):
    """A tensor of the scheme's dtype with the scheme bound (scales 1, zero points default)."""
    ctx = scheme.context
    ndim, c_shape = _shape_array(shape)
    ptr = ctypes.POINTER(_OPAQUE["llmq_tensor"])()
    _call(ctx, "llmq_tensor_create_quantized", ctx.ptr, scheme.ptr, ndim, c_shape,
          ctypes.byref(ptr))
    return Tensor._adopt_ptr(ptr, (ctx,), ctx)


def _quantized_out(x, scheme_or_out, ctx):
    if isinstance(scheme_or_out, Scheme):
        return empty_quantized(scheme_or_out, x.shape)
    if isinstance(scheme_or_out, Tensor):
        return scheme_or_out
    raise TypeError("llmq: expected a Scheme or a quantized Tensor")


def quantize(x, scheme_or_out, scale=None, zero_point=None, *, ctx=None):
    """Static quantization of `x` (float array or Tensor) with given parameters.

    scheme_or_out: a Scheme (a new quantized tensor of x's shape is returned) or a quantized
    Tensor with a scheme (written and returned). scale / zero_point: values broadcast into the
    parameter tensors (their shape: [1] per tensor, [dim(axis)] per channel, [rows] per token,
    [rows, groups] per group); None keeps those already there."""
    ctx = _context_of(ctx, x, scheme_or_out)
    with _Args(ctx) as arg:
        src = arg(x, "x")
        out = _quantized_out(src, scheme_or_out, ctx)
        if scale is not None:
            out.scale[...] = scale
        if zero_point is not None:
            out.zero_point[...] = zero_point
        _call(ctx, "llmq_quantize", ctx.ptr, src.ptr, out.ptr)
    return out


def quantize_dynamic(x, scheme_or_out, *, ctx=None):
    """Dynamic quantization: parameters from x's ranges (per tensor / channel / token / group,
    PyTorch's observer rules), then quantize. Returns the quantized Tensor (as quantize())."""
    ctx = _context_of(ctx, x, scheme_or_out)
    with _Args(ctx) as arg:
        src = arg(x, "x")
        out = _quantized_out(src, scheme_or_out, ctx)
        _call(ctx, "llmq_quantize_dynamic", ctx.ptr, src.ptr, out.ptr)
    return out


def dequantize(q, dtype="f32", *, out=None, ctx=None):
    """(q - zero_point) * scale into a new tensor of `dtype` (f32, f16, bf16), or into `out`
    (a Tensor or NumPy array of q's shape)."""
    ctx = _context_of(ctx, q, out)
    with _Args(ctx) as arg:
        dst = arg(out, "out", writable=True) or Tensor.empty(ctx, dtype, q.shape)
        _call(ctx, "llmq_dequantize", ctx.ptr, q.ptr, dst.ptr)
    return out if out is not None else dst


def copy(src, dst, *, ctx=None):
    """Copy elements (and a quantized tensor's scheme and parameters) between host and device
    tensors, in any direction (llmq_tensor_copy)."""
    ctx = _context_of(ctx, src, dst)
    _call(ctx, "llmq_tensor_copy", ctx.ptr, src.ptr, dst.ptr)
    return dst


def pack(codes, dtype, *, ctx=None):
    """Pack one code per byte (int8 for s4/s2, uint8 for u4/u2) into a new sub-byte tensor."""
    ctx = _context_of(ctx, codes)
    with _Args(ctx) as arg:
        src = arg(codes, "codes")
        dst = Tensor.empty(ctx, dtype, src.shape)
        _call(ctx, "llmq_pack", ctx.ptr, src.ptr, dst.ptr)
    return dst


def unpack(t, *, ctx=None):
    """Unpack a sub-byte tensor into a new tensor of one code per byte (s8 or u8)."""
    ctx = _context_of(ctx, t)
    dst = Tensor.empty(ctx, "s8" if t.dtype in ("s4", "s2") else "u8", t.shape)
    _call(ctx, "llmq_unpack", ctx.ptr, t.ptr, dst.ptr)
    return dst


def convert(src, dst, *, ctx=None):
    """Convert between float dtypes, f32, f16 and bf16 in any direction (round to nearest even;
    NaN stays NaN, overflow becomes Inf). dst: a dtype name (a new tensor of src's shape is
    returned) or a Tensor / NumPy array of src's shape (written and returned)."""
    ctx = _context_of(ctx, src, dst)
    with _Args(ctx) as arg:
        s = arg(src, "src")
        d = Tensor.empty(ctx, dst, s.shape) if isinstance(dst, str) else \
            arg(dst, "dst", writable=True)
        _call(ctx, "llmq_convert", ctx.ptr, s.ptr, d.ptr)
    return d if isinstance(dst, str) else dst


def _params(value, dtype):
    """Scale / zero-point values of a call: Tensors and NumPy arrays as they are (no silent
    conversion), Python numbers and sequences as 1-D arrays of `dtype` (None: int32 for
    integers, float32 otherwise)."""
    if value is None or isinstance(value, (Tensor, np.ndarray)):
        return value
    a = np.asarray(value)
    if dtype is None:
        dtype = np.int32 if a.dtype.kind in "iub" else np.float32
    return np.atleast_1d(a.astype(dtype))


def _empty_like_memory(ctx, t, dtype, shape):
    """A new tensor in the memory (host or device) of tensor t."""
    if t.memory == "device":
        return Tensor.empty_device(ctx, dtype, shape)
    return Tensor.empty(ctx, dtype, shape)


def fake_quantize(x, scheme, scale, zero_point=None, *, out=None, ctx=None):
    """Fake quantization, the forward of quantization-aware training (docs/qat.md):
    y = (clamp(round(x / scale) + zp, qmin, qmax) - zp) * scale, in float, with the scheme's
    grid (Scheme.range), rounding and numerics; equal to dequantize(quantize(x)) bit for bit.

    x: float (f32, f16, bf16) Tensor or array. scale: float32 values of the scheme's parameter
    shape for x ([1] per tensor, [dim(axis)] per channel, [rows] per token, [rows, groups] per
    group); a Python number for one parameter. zero_point: int32 codes, float32 values (the
    learnable zero point, rounded half to even and clamped to the grid), or None (the scheme's
    symmetric zero point). Returns a new tensor of x's dtype and shape, or writes `out` (a
    float Tensor or array of x's shape, x itself included) and returns it. On a CUDA context x
    may be a device Tensor (then scale and zero_point are device Tensors too, and so is the
    result)."""
    ctx = _context_of(ctx, x, scheme, out)
    with _Args(ctx) as arg:
        tx = arg(x, "x")
        ts, tz = arg(_params(scale, np.float32), "scale"), arg(_params(zero_point, None),
                                                                "zero_point")
        y = arg(out, "out", writable=True) or _empty_like_memory(ctx, tx, tx.dtype, tx.shape)
        _call(ctx, "llmq_fake_quantize", ctx.ptr, tx.ptr, scheme.ptr, ts.ptr,
              tz.ptr if tz is not None else None, y.ptr)
    return out if out is not None else y


def fake_quantize_backward(x, scheme, scale, zero_point, dy, *, grad_factor=1.0,
                           scale_grad=True, zero_point_grad=True, ctx=None):
    """Gradients of fake_quantize(x, scheme, scale, zero_point) given dy = dL/dy
    (docs/qat.md): returns (dx, dscale, dzero_point), new tensors.

    dx: the straight-through estimator with the clipping mask, dy's dtype and x's shape.
    dscale (when scale_grad) and dzero_point (when zero_point_grad and zero_point is not None):
    LSQ's gradients, float32 in scale's shape, summed over each parameter's elements and
    multiplied by grad_factor (finite; LSQ suggests 1 / sqrt(elements per parameter * qmax));
    None when not computed. Device Tensors in, device Tensors out (as fake_quantize)."""
    ctx = _context_of(ctx, x, scheme, dy)
    with _Args(ctx) as arg:
        tx, tdy = arg(x, "x"), arg(dy, "dy")
        ts, tz = arg(_params(scale, np.float32), "scale"), arg(_params(zero_point, None),
                                                                "zero_point")
        dx = _empty_like_memory(ctx, tx, tdy.dtype, tx.shape)
        ds = _empty_like_memory(ctx, tx, "f32", ts.shape) if scale_grad else None
        dz = (_empty_like_memory(ctx, tx, "f32", ts.shape)
              if zero_point_grad and tz is not None else None)
        _call(ctx, "llmq_fake_quantize_backward", ctx.ptr, tx.ptr, scheme.ptr, ts.ptr,
              tz.ptr if tz is not None else None, tdy.ptr, float(grad_factor), dx.ptr,
              ds.ptr if ds is not None else None, dz.ptr if dz is not None else None)
    return dx, ds, dz


def matmul(a, b, bias=None, *, out_dtype="f32", out=None, weight_layout="nk",
           requant="exact", ctx=None):
    """C = A * B^T (+ bias) with llmq_matmul (docs/gemm.md).

    a: float activations (Tensor or array, weight-only product) or a quantized s8/u8 Tensor;
    b: quantized weights [N, K] ([K, N] with weight_layout="kn"); bias: float32 [N] or None.
    The result is a new tensor of out_dtype ("f32", "f16", "bf16" or "s32") shaped
    a.shape[:-1] + (N,), or `out` (a Tensor, e.g. an s8 one with its own scheme and
    parameters for a requantized output, or a NumPy array), which is written and returned."""
    ctx = _context_of(ctx, a, b, out)
    opts = MatmulOptions()
    _call(None, "llmq_matmul_options_defaults", ctypes.byref(opts), ctypes.sizeof(opts))
    opts.weight_layout = _enum(WEIGHT_LAYOUT, weight_layout, "weight_layout")
    opts.requant = _enum(REQUANT, requant, "requant")
    with _Args(ctx) as arg:
        ta, tb, tbias = arg(a, "a"), arg(b, "b"), arg(bias, "bias")
        c = arg(out, "out", writable=True)
        if c is None:
            n = tb.shape[0] if opts.weight_layout == 0 else tb.shape[-1]
            c = Tensor.empty(ctx, out_dtype, tuple(ta.shape[:-1]) + (n,))
        _call(ctx, "llmq_matmul_with_options", ctx.ptr, ta.ptr, tb.ptr,
              tbias.ptr if tbias is not None else None, c.ptr, ctypes.byref(opts))
    return out if out is not None else c


def matmul_outlier(a, b, bias=None, *, threshold=6.0, activation_scheme=None, ctx=None):
    """LLM.int8() outlier decomposition (llmq_matmul_outlier): float32 activations `a`, quantized
    weights `b` [N, K]; columns of `a` with some |a| > threshold are multiplied in float with
    the dequantized weights, the rest in INT8 (activation_scheme: None = s8 per token).
    Returns (float32 result a.shape[:-1] + (N,), number of outlier columns)."""
    ctx = _context_of(ctx, a, b)
    count = ctypes.c_int64()
    with _Args(ctx) as arg:
        ta, tb, tbias = arg(a, "a"), arg(b, "b"), arg(bias, "bias")
        c = Tensor.empty(ctx, "f32", tuple(ta.shape[:-1]) + (tb.shape[0],))
        _call(ctx, "llmq_matmul_outlier", ctx.ptr, ta.ptr, tb.ptr,
              tbias.ptr if tbias is not None else None, c.ptr,
              activation_scheme.ptr if activation_scheme is not None else None,
              float(threshold), ctypes.byref(count))
    return c, count.value


def pack_weights(b, *, weight_layout="nk", ctx=None):
    """Prepack quantized 8-bit or 4-bit weights for llmq_matmul (llmq_matmul_pack_weights): a
    new tensor usable only as matmul's `b`, giving results faster under the same contract
    (integer products bit-identical, weight-only ones within the bound of docs/gemm.md)."""
    ctx = _context_of(ctx, b)
    opts = MatmulOptions()
    _call(None, "llmq_matmul_options_defaults", ctypes.byref(opts), ctypes.sizeof(opts))
    opts.weight_layout = _enum(WEIGHT_LAYOUT, weight_layout, "weight_layout")
    ptr = ctypes.POINTER(_OPAQUE["llmq_tensor"])()
    _call(ctx, "llmq_matmul_pack_weights", ctx.ptr, b.ptr, ctypes.byref(opts), ctypes.byref(ptr))
    return Tensor._adopt_ptr(ptr, (ctx,), ctx, writable=False)


# ------------------------------------------------------------------------------------------
# Calibration, parameter tables and recipes


def observer_param_bounds(observer, key):
    """(min, max) of the values setting `key` accepts for `observer` (names of OBSERVER and
    OBSERVER_PARAM); InvalidArgError when the observer does not use the setting."""
    lo, hi = ctypes.c_double(), ctypes.c_double()
    o, k = _enum(OBSERVER, observer, "observer"), _enum(OBSERVER_PARAM, key, "key")
    status = library().llmq_observer_param_bounds(o, k, ctypes.byref(lo), ctypes.byref(hi))
    if status:  # no context, so no C message: say it here
        raise _ERRORS.get(status, LlmqError)(
            status, "llmq_observer_param_bounds",
            f"llmq_observer_param_bounds: key={_enum_name(OBSERVER_PARAM, k)}: not a setting "
            f"of the {_enum_name(OBSERVER, o)} observer")
    return lo.value, hi.value


_INTEGER_PARAMS = ("bins", "grid", "upsample")


class Quantizer(Handle):
    """llmq_quantizer: calibrates the scale and zero point of a scheme from observed batches,
    for static post-training quantization (docs/calibration.md).

    observer: a name of OBSERVER ("minmax", "moving_average", "percentile", "entropy",
    "histogram_l2", "mse"); params: its settings by name (momentum, percentile, bins, grid,
    upsample), e.g. Quantizer(ctx, scheme, "percentile", percentile=99.9). The scheme is
    copied. Observe any number of batches, finalize(), then apply(dst) binds the scheme and
    the calibrated parameters to a quantized tensor for quantize():

        q = Quantizer(ctx, ctx.scheme("s8"), "percentile")
        for batch in batches:
            q.observe(batch)
        a8 = q.finalize().apply(llmq.empty_quantized(q.scheme, shape))
        llmq.quantize(x, a8)

    scale, zero_point and range are read-only NumPy views once finalized (None before); they
    keep the quantizer's memory alive."""

    _destroy = "llmq_quantizer_destroy"

    def __init__(self, ctx, scheme, observer="minmax", **params):
        ptr = ctypes.POINTER(_OPAQUE["llmq_quantizer"])()
        _call(ctx, "llmq_quantizer_create", ctx.ptr, scheme.ptr,
              _enum(OBSERVER, observer, "observer"), ctypes.byref(ptr))
        self._adopt(ptr, (ctx,), ctx)
        for key, value in params.items():
            self.set_param(key, value)

    @classmethod
    def _adopt_new(cls, ptr, ctx):
        q = cls.__new__(cls)
        q._adopt(ptr, (ctx,), ctx)
        return q

    def set_param(self, key, value):
        """Change a setting of the observer (before the first batch), e.g. ("bins", 4096)."""
        _call(self._ctx, "llmq_quantizer_set_param", self.ptr,
              _enum(OBSERVER_PARAM, key, "key"), float(value))

    def get_param(self, key):
        """A setting of the observer: a float, or an int for bins, grid and upsample."""
        value = ctypes.c_double()
        k = _enum(OBSERVER_PARAM, key, "key")
        _call(self._ctx, "llmq_quantizer_get_param", self.ptr, k, ctypes.byref(value))
        return int(value.value) if _enum_name(OBSERVER_PARAM, k) in _INTEGER_PARAMS \
            else value.value

    @property
    def params(self):
        """Every setting the observer uses, {name: value}."""
        lib = library()
        o, lo, hi = lib.llmq_quantizer_observer(self.ptr), ctypes.c_double(), ctypes.c_double()
        return {k: self.get_param(k) for k, v in OBSERVER_PARAM.items()
                if lib.llmq_observer_param_bounds(o, v, ctypes.byref(lo), ctypes.byref(hi)) == 0}

    def observe(self, x):
        """Fold one batch (float Tensor or array) into the statistics."""
        ctx = self._ctx
        with _Args(ctx) as arg:
            _call(ctx, "llmq_quantizer_observe", ctx.ptr, self.ptr, arg(x, "x").ptr)

    def finalize(self):
        """Compute the clipping ranges, scales and zero points; returns the quantizer."""
        _call(self._ctx, "llmq_quantizer_finalize", self._ctx.ptr, self.ptr)
        return self

    def apply(self, dst):
        """Bind the scheme and calibrated parameters to the quantized Tensor `dst` (of the
        scheme's dtype and a matching parameter layout); returns dst."""
        if not isinstance(dst, Tensor):
            raise TypeError(f"llmq: dst must be a quantized Tensor, got {type(dst).__name__}")
        _call(dst.context, "llmq_quantizer_apply", dst.context.ptr, self.ptr, dst.ptr)
        return dst

    @property
    def scheme(self):
        """The scheme calibrated (the quantizer's copy, read-only)."""
        return Scheme._borrow(library().llmq_quantizer_scheme(self.ptr), self)

    @property
    def observer(self):
        """Name of the observer, e.g. "percentile"."""
        lib = library()
        return _str(lib.llmq_observer_name(lib.llmq_quantizer_observer(self.ptr)))

    batch_count = property(lambda q: library().llmq_quantizer_batch_count(q.ptr),
                           doc="Batches observed so far.")
    finalized = property(lambda q: bool(library().llmq_quantizer_scale(q.ptr)),
                         doc="Whether finalize() has succeeded.")

    def _view(self, fn):
        p = getattr(library(), fn)(self.ptr)
        if not p:
            return None
        return Tensor._adopt_ptr(p, (self,), self._ctx, destroy=False, writable=False).numpy()

    @property
    def scale(self):
        """float32 scales ([1] per tensor, [channels], [rows, groups]), or None before
        finalize(); a read-only view."""
        return self._view("llmq_quantizer_scale")

    @property
    def zero_point(self):
        """int32 zero points shaped as scale, or None before finalize(); a read-only view."""
        return self._view("llmq_quantizer_zero_point")

    @property
    def range(self):
        """float32 [parameter sets, 2]: the clipping range (lo, hi) the observer chose, before
        PyTorch's widening to include 0; None before finalize(); a read-only view."""
        return self._view("llmq_quantizer_range")

    def __repr__(self):
        if self.closed:
            return "<llmq.Quantizer closed>"
        state = "finalized" if self.finalized else f"{self.batch_count} batches"
        return f"<llmq.Quantizer {self.observer} {self.scheme.dtype} {state}>"


class QTable(Handle):
    """llmq_qtable: tensor name -> scheme, scales and zero points, saved and loaded as YAML
    (docs/calibration.md); a mapping in insertion (or file) order.

    table[name] = q stores a finalized Quantizer's (or a quantized Tensor's) scheme and
    parameters, set() also takes a Scheme with explicit values; table[name] / get() returns
    (scheme, scale, zero_point); apply(name, dst) binds an entry to a quantized tensor."""

    _destroy = "llmq_qtable_destroy"

    def __init__(self, ctx):
        ptr = ctypes.POINTER(_OPAQUE["llmq_qtable"])()
        _call(ctx, "llmq_qtable_create", ctx.ptr, ctypes.byref(ptr))
        self._adopt(ptr, (ctx,), ctx)
        self._borrowed = {}

    @classmethod
    def load(cls, ctx, path):
        """Read a table written by save() (or by hand); every field is validated
        (ParseError: "path:line:column: key: reason")."""
        ptr = ctypes.POINTER(_OPAQUE["llmq_qtable"])()
        _call(ctx, "llmq_qtable_load", ctx.ptr, os.fsencode(path), ctypes.byref(ptr))
        t = cls.__new__(cls)
        t._adopt(ptr, (ctx,), ctx)
        t._borrowed = {}
        return t

    def save(self, path):
        """Write the table as YAML (through a temporary file renamed over `path`)."""
        _call(self._ctx, "llmq_qtable_save", self._ctx.ptr, self.ptr, os.fsencode(path))

    def __len__(self):
        return library().llmq_qtable_count(self.ptr)

    def names(self):
        """Entry names in insertion (or file) order."""
        lib, p = library(), self.ptr
        return [_str(lib.llmq_qtable_name_at(p, i)) for i in range(len(self))]

    def __iter__(self):
        return iter(self.names())

    def __contains__(self, name):
        return name in self.names()

    def set(self, name, source, scale=None, zero_point=None):
        """Add or replace entry `name` with copies of: a finalized Quantizer's scheme and
        parameters, a quantized Tensor's, or a Scheme with `scale` (float32) and `zero_point`
        (int32) values in its parameter shape (Tensors, arrays or Python numbers)."""
        lib, ctx = library(), self._ctx
        with ctx._lock, _Args(ctx) as arg:
            if isinstance(source, Quantizer):
                if not source.finalized:
                    raise ValueError("llmq: the quantizer is not finalized (call finalize())")
                ps = (lib.llmq_quantizer_scheme(source.ptr), lib.llmq_quantizer_scale(source.ptr),
                      lib.llmq_quantizer_zero_point(source.ptr))
            elif isinstance(source, Tensor):
                if source.scheme is None:
                    raise ValueError("llmq: the tensor has no scheme")
                ps = (lib.llmq_tensor_scheme(source.ptr), lib.llmq_tensor_scale(source.ptr),
                      lib.llmq_tensor_zero_point(source.ptr))
            elif isinstance(source, Scheme):
                if scale is None or zero_point is None:
                    raise ValueError("llmq: a Scheme needs scale= and zero_point=")
                ts = arg(_params(scale, np.float32), "scale")
                tz = arg(_params(zero_point, np.int32), "zero_point")
                ps = (source.ptr, ts.ptr, tz.ptr)
            else:
                raise TypeError("llmq: expected a Quantizer, a quantized Tensor or a Scheme, got "
                                f"{type(source).__name__}")
            _call(ctx, "llmq_qtable_set", ctx.ptr, self.ptr, name.encode(), *ps)
            # the entry's old scheme is gone: close the Scheme objects get() returned for it
            for ref in self._borrowed.pop(name, ()):
                s = ref()
                if s is not None:
                    s.close()

    __setitem__ = set

    def get(self, name):
        """(scheme, scale, zero_point) of entry `name`: the scheme read-only (closed when the
        entry is replaced), the parameters as NumPy copies (float32, int32)."""
        ctx, tensor_p = self._ctx, ctypes.POINTER(_OPAQUE["llmq_tensor"])
        sp, scp, zpp = ctypes.POINTER(_OPAQUE["llmq_scheme"])(), tensor_p(), tensor_p()
        with ctx._lock:  # no set() between the lookup and the copies
            _call(ctx, "llmq_qtable_get", ctx.ptr, self.ptr, name.encode(), ctypes.byref(sp),
                  ctypes.byref(scp), ctypes.byref(zpp))
            params = []
            for p in (scp, zpp):
                t = Tensor._adopt_ptr(p, (self,), ctx, destroy=False, writable=False)
                params.append(np.array(t.numpy()))  # a copy: replacing the entry frees it
                t.close()
            scheme = Scheme._borrow(sp, self)
            alive = [r for r in self._borrowed.get(name, ()) if r() is not None]
            self._borrowed[name] = alive + [weakref.ref(scheme)]
        return scheme, params[0], params[1]

    def __getitem__(self, name):
        return self.get(name)

    def apply(self, name, dst):
        """Bind entry `name` (scheme and parameters) to the quantized Tensor `dst`; returns
        dst."""
        if not isinstance(dst, Tensor):
            raise TypeError(f"llmq: dst must be a quantized Tensor, got {type(dst).__name__}")
        _call(dst.context, "llmq_qtable_apply", dst.context.ptr, self.ptr, name.encode(), dst.ptr)
        return dst

    def __repr__(self):
        return "<llmq.QTable closed>" if self.closed else f"<llmq.QTable {len(self)} entries>"


#: What a recipe says for one tensor (Recipe.resolve): skip (bool: keep the tensor as it
#: is), rule (index of the matching rule, None for the defaults), weight and activation
#: (Schemes owned by the result, or None: float), mode ("float", "dynamic" or "static":
#: how the activations are quantized).
RecipeChoice = collections.namedtuple("RecipeChoice", "skip rule weight activation mode")


class Recipe(Handle):
    """llmq_recipe: a YAML recipe (docs/recipes.md), i.e. which weight scheme, activation
    scheme and calibration each tensor of a model gets. Recipe(ctx, path) or Recipe.load
    reads a file, Recipe.parse a string; everything is validated then (ParseError:
    "file:line:column: key.path: reason"). len() is the number of rules."""

    _destroy = "llmq_recipe_destroy"

    def __init__(self, ctx, path):
        ptr = ctypes.POINTER(_OPAQUE["llmq_recipe"])()
        _call(ctx, "llmq_recipe_load", ctx.ptr, os.fsencode(path), ctypes.byref(ptr))
        self._adopt(ptr, (ctx,), ctx)

    @classmethod
    def load(cls, ctx, path):
        """Recipe(ctx, path)."""
        return cls(ctx, path)

    @classmethod
    def parse(cls, ctx, text, source=None):
        """A recipe from YAML text (str or bytes); `source` names it in messages."""
        data = text.encode() if isinstance(text, str) else bytes(text)
        ptr = ctypes.POINTER(_OPAQUE["llmq_recipe"])()
        _call(ctx, "llmq_recipe_parse", ctx.ptr, data, len(data),
              source.encode() if source is not None else None, ctypes.byref(ptr))
        r = cls.__new__(cls)
        r._adopt(ptr, (ctx,), ctx)
        return r

    def __len__(self):
        return library().llmq_recipe_rule_count(self.ptr)

    def resolve(self, name, *, ctx=None):
        """RecipeChoice for tensor `name`: the first rule whose globs match, merged over the
        defaults."""
        ctx, lib = ctx or self._ctx, library()
        c = RecipeChoiceStruct()
        _call(None, "llmq_recipe_choice_defaults", ctypes.byref(c), ctypes.sizeof(c))
        _call(ctx, "llmq_recipe_resolve", ctx.ptr, self.ptr, name.encode(), ctypes.byref(c))
        skip, rule = bool(c.skip), (c.rule if c.rule >= 0 else None)
        mode = _enum_name(ACTIVATION_MODE, c.activation_mode)
        schemes = []
        try:
            for field in ("weight", "activation"):
                # a copy of the pointer (a field read shares the struct's memory)
                p = ctypes.cast(getattr(c, field), ctypes.POINTER(_OPAQUE["llmq_scheme"]))
                setattr(c, field, None)  # the Scheme object owns it from here
                schemes.append(Scheme._own(p, ctx) if p else None)
        finally:
            lib.llmq_recipe_choice_clear(ctypes.byref(c))
        return RecipeChoice(skip, rule, schemes[0], schemes[1], mode)

    def smoothquant(self, name, *, ctx=None):
        """SmoothQuant settings of tensor `name` (llmq_recipe_resolve_smoothquant) as a dict:
        enabled, search, alpha, grid, fold (None when there is no fold target), rule."""
        ctx = ctx or self._ctx
        q = RecipeSmoothQuantStruct()
        q.size = ctypes.sizeof(q)
        _call(ctx, "llmq_recipe_resolve_smoothquant", ctx.ptr, self.ptr, name.encode(),
              ctypes.byref(q))
        return {"enabled": bool(q.enabled), "search": bool(q.search), "alpha": q.alpha,
                "grid": q.grid, "fold": q.fold.decode() or None,
                "rule": q.rule if q.rule >= 0 else None}

    def create_quantizer(self, name, *, ctx=None):
        """The Quantizer that calibrates the static input activations of tensor `name`: its
        activation scheme, observer and settings (StateError when they are not static)."""
        ctx = ctx or self._ctx
        ptr = ctypes.POINTER(_OPAQUE["llmq_quantizer"])()
        _call(ctx, "llmq_recipe_create_quantizer", ctx.ptr, self.ptr, name.encode(),
              ctypes.byref(ptr))
        return Quantizer._adopt_new(ptr, ctx)

    def __repr__(self):
        return "<llmq.Recipe closed>" if self.closed else f"<llmq.Recipe {len(self)} rules>"


#: What Plan.sensitivity gives for one tensor under one candidate: error (relative output
#: error on the calibration inputs, or relative weight error without them), sqnr_db, bits
#: (per weight, scales and zero points included) and calibrated (bool).
PlanSensitivity = collections.namedtuple("PlanSensitivity", "error sqnr_db bits calibrated")


class Plan(Handle):
    """llmq_plan: mixed-precision planning (docs/llm-methods.md). Add candidate schemes
    (add_candidates("w8,w4g32,w4g128") or add_candidate(name, scheme)), then tensors with
    their calibration inputs (add_tensor), then solve(budget) for the scheme of each tensor
    under an average bit budget, and write_recipe(path)."""

    _destroy = "llmq_plan_destroy"

    def __init__(self, ctx, candidates=None):
        ptr = ctypes.POINTER(_OPAQUE["llmq_plan"])()
        _call(ctx, "llmq_plan_create", ctx.ptr, ctypes.byref(ptr))
        self._adopt(ptr, (ctx,), ctx)
        if candidates is not None:
            self.add_candidates(candidates)

    def add_candidates(self, names):
        """Candidates by name, comma-separated: w<bits>[g<group>][s|a]."""
        _call(self._ctx, "llmq_plan_add_candidates", self._ctx.ptr, self.ptr, names.encode())

    def add_candidate(self, name, scheme):
        """A candidate Scheme under `name` (copied)."""
        _call(self._ctx, "llmq_plan_add_candidate", self._ctx.ptr, self.ptr, name.encode(),
              scheme.ptr)

    def add_tensor(self, name, weight, inputs=None):
        """Measure weight [out, in] (Tensor or array) under every candidate, with the layer's
        calibration inputs [tokens, in] when given."""
        ctx = self._ctx
        with _Args(ctx) as arg:
            w, x = arg(weight, "weight"), arg(inputs, "inputs")
            _call(ctx, "llmq_plan_add_tensor", ctx.ptr, self.ptr, name.encode(), w.ptr,
                  x.ptr if x is not None else None)

    def candidates(self):
        """Candidate names in the order added."""
        lib, p = library(), self.ptr
        return [_str(lib.llmq_plan_candidate_name(p, i))
                for i in range(lib.llmq_plan_candidate_count(p))]

    def names(self):
        """Tensor names in the order added."""
        lib, p = library(), self.ptr
        return [_str(lib.llmq_plan_tensor_name(p, i)) for i in range(len(self))]

    def __len__(self):
        return library().llmq_plan_tensor_count(self.ptr)

    def sensitivity(self, tensor, candidate):
        """PlanSensitivity of tensor index `tensor` under candidate index `candidate`."""
        v = [ctypes.c_double() for _ in range(3)]
        cal = ctypes.c_int32()
        _call(None, "llmq_plan_sensitivity", self.ptr, tensor, candidate,
              *[ctypes.byref(x) for x in v], ctypes.byref(cal))
        return PlanSensitivity(v[0].value, v[1].value, v[2].value, bool(cal.value))

    def solve(self, budget_bits, objective="sum"):
        """Choose the candidate of each tensor minimizing the objective ("sum" or
        "size_weighted") within `budget_bits` average bits per weight; returns
        (objective, bits_per_weight, exact)."""
        _call(None, "llmq_plan_set_objective", self.ptr, PLAN_OBJECTIVE[objective])
        _call(self._ctx, "llmq_plan_solve", self._ctx.ptr, self.ptr, float(budget_bits))
        obj, bits, exact = ctypes.c_double(), ctypes.c_double(), ctypes.c_int32()
        _call(None, "llmq_plan_result", self.ptr, ctypes.byref(obj), ctypes.byref(bits),
              ctypes.byref(exact))
        return obj.value, bits.value, bool(exact.value)

    def choices(self):
        """{tensor name: chosen candidate name} of the last solve()."""
        lib, p = library(), self.ptr
        return {n: _str(lib.llmq_plan_candidate_name(p, lib.llmq_plan_choice(p, i)))
                for i, n in enumerate(self.names())}

    def write_recipe(self, path):
        """Write the solved plan as a recipe (through a temporary file renamed over it)."""
        _call(self._ctx, "llmq_plan_write_recipe", self._ctx.ptr, self.ptr, os.fsencode(path))

    def __repr__(self):
        return "<llmq.Plan closed>" if self.closed else f"<llmq.Plan {len(self)} tensors>"


# ------------------------------------------------------------------------------------------
# Model files


class Model(Handle):
    """llmq_model: a safetensors file or llama2.c checkpoint, memory-mapped.

    len(m), iteration and `name in m` go over tensor names; m[name] is a Tensor viewing the
    file (quantized tensors written by llmq come back with their scheme bound); m.metadata is
    a dict. Tensors keep the model alive, and closing the model closes them."""

    _destroy = "llmq_model_destroy"

    def __init__(self, ctx, path):
        ptr = ctypes.POINTER(_OPAQUE["llmq_model"])()
        _call(ctx, "llmq_model_open", ctx.ptr, os.fsencode(path), ctypes.byref(ptr))
        self._adopt(ptr, (ctx,), ctx)

    @property
    def format(self):
        """"safetensors" or "llama2c"."""
        return _enum_name(MODEL_FORMAT, library().llmq_model_get_format(self.ptr))

    def __len__(self):
        return library().llmq_model_tensor_count(self.ptr)

    def names(self):
        """Tensor names in file order."""
        lib, p = library(), self.ptr
        return [_str(lib.llmq_model_tensor_name(p, i)) for i in range(len(self))]

    def __iter__(self):
        return iter(self.names())

    def __contains__(self, name):
        return name in self.names()

    def info(self, name):
        """(file dtype as the file spells it, stored shape) of tensor `name`."""
        lib, p = library(), self.ptr
        index = self.names().index(name)
        ndim, shape = ctypes.c_int32(), (ctypes.c_int64 * 16)()
        _call(None, "llmq_model_tensor_shape", p, index, ctypes.byref(ndim), shape, 16)
        return _str(lib.llmq_model_tensor_file_dtype(p, index)), tuple(shape[:ndim.value])

    @property
    def metadata(self):
        """The `__metadata__` entries (llama2.c: its hyper-parameters), as a dict."""
        lib, p = library(), self.ptr
        return {_str(lib.llmq_model_metadata_key(p, i)): _str(lib.llmq_model_metadata_value(p, i))
                for i in range(lib.llmq_model_metadata_count(p))}

    def tensor(self, name, *, ctx=None):
        """Tensor `name`, viewing the mapped file (copy-on-write)."""
        ctx = ctx or self._ctx
        ptr = ctypes.POINTER(_OPAQUE["llmq_tensor"])()
        _call(ctx, "llmq_model_tensor", ctx.ptr, self.ptr, name.encode(), ctypes.byref(ptr))
        return Tensor._adopt_ptr(ptr, (ctx, self), ctx)

    __getitem__ = tensor

    def evict(self, name, *, ctx=None):
        """Let the OS drop the pages of tensor `name` (a streaming reader's step once a tensor
        is used); they are read again from the file if needed. Views stay valid, but their
        unsaved writes are lost."""
        ctx = ctx or self._ctx
        _call(ctx, "llmq_model_evict", ctx.ptr, self.ptr, name.encode())

    def __repr__(self):
        return "<llmq.Model closed>" if self.closed else f"<llmq.Model {self.format} " \
            f"{len(self)} tensors>"


class ModelWriter(Handle):
    """llmq_model_writer: writes a safetensors file through a temporary file renamed by
    finish(). As a context manager it finishes on a normal exit and discards the output when
    an exception leaves the block."""

    _destroy = "llmq_model_writer_destroy"

    def __init__(self, ctx, path):
        ptr = ctypes.POINTER(_OPAQUE["llmq_model_writer"])()
        _call(ctx, "llmq_model_writer_create", ctx.ptr, os.fsencode(path), ctypes.byref(ptr))
        self._adopt(ptr, (ctx,), ctx)
        self.finished = False

    def set_metadata(self, key, value):
        _call(self._ctx, "llmq_model_writer_set_metadata", self._ctx.ptr, self.ptr, key.encode(),
              value.encode())

    def declare(self, name, dtype, shape, scheme=None):
        """Declare a tensor (all before the first write): dtype, logical shape and, for
        quantized data, the Scheme (or a quantized Tensor, whose scheme is used)."""
        if isinstance(scheme, Tensor):
            scheme = scheme.scheme
        ndim, c_shape = _shape_array(shape)
        _call(self._ctx, "llmq_model_writer_declare", self._ctx.ptr, self.ptr, name.encode(),
              _enum(DTYPES, dtype, "dtype"), ndim, c_shape,
              scheme.ptr if scheme is not None else None)

    def write(self, name, t):
        """Write declared tensor `name` from a Tensor or NumPy array."""
        with _Args(self._ctx) as arg:
            _call(self._ctx, "llmq_model_writer_write", self._ctx.ptr, self.ptr, name.encode(),
                  arg(t, name).ptr)

    def finish(self):
        _call(self._ctx, "llmq_model_writer_finish", self._ctx.ptr, self.ptr)
        self.finished = True

    def __exit__(self, exc_type, *exc):
        try:
            if exc_type is None and not self.finished and not self.closed:
                self.finish()
        finally:
            self.close()


def save_model(ctx, path, tensors, metadata=None):
    """Write {name: Tensor or NumPy array} (quantized tensors with their schemes) and the
    metadata {key: value} to a safetensors file at `path`."""
    with _Args(ctx) as arg, ModelWriter(ctx, path) as w:
        ts = {name: arg(t, name) for name, t in tensors.items()}
        for key, value in (metadata or {}).items():
            w.set_metadata(key, value)
        for name, t in ts.items():
            w.declare(name, t.dtype, t.shape, t.scheme)
        for name, t in ts.items():
            w.write(name, t)
