/* tokenizer.c - llama2.c tokenizers (BPE with scores, byte fallback). SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

static int by_piece(const void *a, const void *b)
{
    return strcmp(((const struct token_index *)a)->piece, ((const struct token_index *)b)->piece);
}

static int32_t lookup(const tokenizer *t, const char *s, size_t n)
{
    int32_t lo = 0, hi = t->vocab_size - 1;
    while (lo <= hi) {
        const int32_t mid = (lo + hi) / 2, id = t->sorted[mid].id;
        const int c = strncmp(t->sorted[mid].piece, s, n);
        const int cmp = c != 0 ? c : (t->sorted[mid].piece[n] != '\0');
        if (cmp == 0)
            return id;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

static int load_bin(tokenizer *t, FILE *f)
{
    int32_t max_len;
    if (fread(&max_len, 4, 1, f) != 1)
        return -1;
    for (int32_t i = 0; i < t->vocab_size; i++) {
        int32_t len;
        if (fread(&t->scores[i], 4, 1, f) != 1 || fread(&len, 4, 1, f) != 1 || len < 0 ||
            len > 4096)
            return -1;
        t->pieces[i] = malloc((size_t)len + 1);
        if (t->pieces[i] == NULL || fread(t->pieces[i], 1, (size_t)len, f) != (size_t)len)
            return -1;
        t->pieces[i][len] = '\0';
    }
    return 0;
}

static int load_vocab(tokenizer *t, FILE *f)
{
    char line[256];
    int32_t i = 0;
    while (i < t->vocab_size && fgets(line, sizeof line, f) != NULL) {
        char *tab = strchr(line, '\t');
        if (tab == NULL)
            return -1;
        *tab = '\0';
        t->scores[i] = strtof(tab + 1, NULL);
        /* U+2581 (e2 96 81) stands for a space */
        char piece[256];
        size_t n = 0;
        for (const char *p = line; *p; p++) {
            if ((unsigned char)p[0] == 0xe2 && (unsigned char)p[1] == 0x96 &&
                (unsigned char)p[2] == 0x81) {
                piece[n++] = ' ';
                p += 2;
            } else {
                piece[n++] = *p;
            }
        }
        piece[n] = '\0';
        t->pieces[i] = strdup(piece);
        if (t->pieces[i] == NULL)
            return -1;
        i++;
    }
    return i == t->vocab_size ? 0 : -1;
}

int tokenizer_load(tokenizer *t, const char *path, int32_t vocab_size)
{
    memset(t, 0, sizeof *t);
    t->vocab_size = vocab_size;
    t->pieces = calloc((size_t)vocab_size, sizeof *t->pieces);
    t->scores = calloc((size_t)vocab_size, sizeof *t->scores);
    t->sorted = malloc((size_t)vocab_size * sizeof *t->sorted);
    FILE *f = fopen(path, "rb");
    const size_t n = strlen(path);
    const int is_vocab = n > 6 && strcmp(path + n - 6, ".vocab") == 0;
    int rc = t->pieces && t->scores && t->sorted && f ? (is_vocab ? load_vocab(t, f) : load_bin(t, f))
                                                      : -1;
    if (f != NULL)
        fclose(f);
    if (rc != 0) {
        fprintf(stderr, "llmq-llama: %s: not a tokenizer with %d tokens\n", path, vocab_size);
        tokenizer_free(t);
        return -1;
    }
    for (int32_t i = 0; i < vocab_size; i++)
        t->sorted[i] = (struct token_index){t->pieces[i], i};
    qsort(t->sorted, (size_t)vocab_size, sizeof *t->sorted, by_piece);
    t->byte_fallback = vocab_size > 258 && strcmp(t->pieces[3], "<0x00>") == 0;
    return 0;
}

void tokenizer_free(tokenizer *t)
{
    for (int32_t i = 0; t->pieces != NULL && i < t->vocab_size; i++)
        free(t->pieces[i]);
    free(t->pieces);
    free(t->scores);
    free(t->sorted);
    memset(t, 0, sizeof *t);
}

int tokenizer_encode(const tokenizer *t, const char *text, int bos, int32_t *tokens)
{
    int n = 0;
    if (bos)
        tokens[n++] = TOKEN_BOS;
    if (text[0] != '\0') {
        const int32_t space = lookup(t, " ", 1);
        tokens[n++] = space >= 0 ? space : TOKEN_UNK;
    }
    /* code points */
    for (const char *p = text; *p;) {
        size_t len = 1;
        while (len < 4 && (p[len] & 0xc0) == 0x80)
            len++;
        const int32_t id = lookup(t, p, len);
        if (id >= 0) {
            tokens[n++] = id;
        } else if (t->byte_fallback) {
            for (size_t i = 0; i < len; i++)
                tokens[n++] = (unsigned char)p[i] + 3;
        } else {
            tokens[n++] = TOKEN_UNK;
        }
        p += len;
    }
    /* merge the best-scoring adjacent pair until none is in the vocabulary */
    char buf[512];
    for (;;) {
        float best = -1e30f;
        int32_t best_id = -1;
        int best_i = -1;
        for (int i = bos ? 1 : 0; i + 1 < n; i++) {
            const size_t la = strlen(t->pieces[tokens[i]]), lb = strlen(t->pieces[tokens[i + 1]]);
            if (la + lb >= sizeof buf)
                continue;
            memcpy(buf, t->pieces[tokens[i]], la);
            memcpy(buf + la, t->pieces[tokens[i + 1]], lb);
            const int32_t id = lookup(t, buf, la + lb);
            if (id >= 0 && t->scores[id] > best) {
                best = t->scores[id];
                best_id = id;
                best_i = i;
            }
        }
        if (best_i < 0)
            break;
        tokens[best_i] = best_id;
        memmove(tokens + best_i + 1, tokens + best_i + 2, (size_t)(n - best_i - 2) * sizeof *tokens);
        n--;
    }
    return n;
}

const char *tokenizer_decode(const tokenizer *t, int32_t prev, int32_t id, char buf[8])
{
    const char *p = t->pieces[id];
    if (prev == TOKEN_BOS && p[0] == ' ')
        p++;
    unsigned byte;
    if (sscanf(p, "<0x%02X>", &byte) == 1) {
        buf[0] = (char)byte;
        buf[1] = '\0';
        return buf;
    }
    return p;
}
