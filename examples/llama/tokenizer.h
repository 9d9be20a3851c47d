/* tokenizer.h - llama2.c tokenizers: the .bin format, and the character .vocab of
 * SentencePiece models without byte fallback. SPDX-License-Identifier: MIT */
#ifndef LLAMA_TOKENIZER_H
#define LLAMA_TOKENIZER_H

#include <stdint.h>

struct token_index {
    const char *piece;
    int32_t id;
};

typedef struct tokenizer {
    char **pieces;   /* id -> UTF-8 bytes */
    float *scores;   /* merge priority */
    int32_t vocab_size;
    struct token_index *sorted; /* (piece, id) sorted by piece, for lookup */
    int byte_fallback; /* ids 3..258 are <0x00>..<0xFF> */
} tokenizer;

enum { TOKEN_UNK = 0, TOKEN_BOS = 1, TOKEN_EOS = 2 };

/* Load a tokenizer: a llama2.c .bin file, or a .vocab text file (piece TAB score per line,
 * U+2581 standing for a space). Returns 0, or -1 with a message on stderr. */
int tokenizer_load(tokenizer *t, const char *path, int32_t vocab_size);
void tokenizer_free(tokenizer *t);

/* Encode text as llama2.c does: BOS, a dummy-prefix space, code points looked up (unknown
 * ones as byte tokens, or <unk> without byte fallback), then greedy merges by score.
 * tokens must hold strlen(text) + 3 ids. Returns the count. */
int tokenizer_encode(const tokenizer *t, const char *text, int bos, int32_t *tokens);

/* The text of token `id` following token `prev` (no leading space after BOS, byte tokens as
 * their byte). Returns a pointer into t or into buf (8 bytes). */
const char *tokenizer_decode(const tokenizer *t, int32_t prev, int32_t id, char buf[8]);

#endif
