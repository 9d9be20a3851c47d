/* eval.c - perplexity under the project's protocol. SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"

#define MAX_SEQ 257
#define MIN_SEQ 8

char *llama_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    const long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "%s: cannot read\n", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* -log softmax(logits)[target], in double. */
static double nll_of(const float *logits, int vocab, int target)
{
    float mx = logits[0];
    for (int i = 1; i < vocab; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < vocab; i++)
        sum += exp((double)logits[i] - mx);
    return log(sum) - ((double)logits[target] - mx);
}

int llama_eval(llama *m, const tokenizer *t, const char *text, int64_t max_tokens, double *nll,
               int64_t *count)
{
    const int vocab = m->cfg.vocab_size;
    const int max_seq = MAX_SEQ;
    *nll = 0.0;
    *count = 0;
    const size_t n = strlen(text);
    char *para = malloc(n + 1);
    int32_t *tokens = malloc((n + 3) * sizeof *tokens);
    float *logits = malloc((size_t)max_seq * vocab * sizeof *logits);
    int rc = para && tokens && logits ? 0 : -1;
    const char *p = text;
    while (rc == 0 && *p != '\0' && *count < max_tokens) {
        const char *end = strstr(p, "\n\n");
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *start = p;
        p = end != NULL ? end + 2 : p + len;
        /* strip the paragraph: this reproduces the protocol's sanity values (stories260K
           4.201, babyllama 2.061); unstripped, 930 trailing spaces would add predictions */
        while (len > 0 && isspace((unsigned char)*start)) {
            start++;
            len--;
        }
        while (len > 0 && isspace((unsigned char)start[len - 1]))
            len--;
        if (len == 0)
            continue;
        memcpy(para, start, len);
        para[len] = '\0';
        int nt = tokenizer_encode(t, para, 1, tokens);
        nt = nt < max_seq ? nt : max_seq;
        if (nt < MIN_SEQ)
            continue;
        if (nt > m->max_batch) {
            fprintf(stderr, "llmq-llama: a paragraph needs a batch of %d tokens\n", nt);
            rc = -1;
            break;
        }
        rc = llama_forward(m, tokens, nt, 0, logits);
        for (int i = 0; rc == 0 && i + 1 < nt; i++)
            *nll += nll_of(logits + (size_t)i * vocab, vocab, tokens[i + 1]);
        *count += nt - 1;
    }
    free(para);
    free(tokens);
    free(logits);
    return rc;
}
