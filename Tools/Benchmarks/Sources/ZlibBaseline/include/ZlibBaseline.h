#ifndef ZLIB_BASELINE_H
#define ZLIB_BASELINE_H
#include <stddef.h>

// The best bare zlib can do for one frame: a deflate stream created once and reset per
// call, raw deflate, the same level and window Wire uses. Returns the compressed size, or
// 0 when `out` is too small.
typedef struct zlib_baseline zlib_baseline;
zlib_baseline *zlib_baseline_create(int level);
size_t zlib_baseline_compress(zlib_baseline *baseline, const void *in, size_t in_len, void *out, size_t out_cap);
void zlib_baseline_destroy(zlib_baseline *baseline);
#endif
