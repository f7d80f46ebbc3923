#include "ZlibBaseline.h"
#include <stdlib.h>
#include <zlib.h>

struct zlib_baseline { z_stream stream; };

zlib_baseline *zlib_baseline_create(int level) {
    zlib_baseline *baseline = calloc(1, sizeof *baseline);
    if (baseline && deflateInit2(&baseline->stream, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(baseline);
        return NULL;
    }
    return baseline;
}

size_t zlib_baseline_compress(zlib_baseline *baseline, const void *in, size_t in_len, void *out, size_t out_cap) {
    z_stream *s = &baseline->stream;
    if (deflateReset(s) != Z_OK) return 0;
    s->next_in = (Bytef *)in;
    s->avail_in = (uInt)in_len;
    s->next_out = out;
    s->avail_out = (uInt)out_cap;
    return deflate(s, Z_FINISH) == Z_STREAM_END ? out_cap - s->avail_out : 0;
}

void zlib_baseline_destroy(zlib_baseline *baseline) {
    deflateEnd(&baseline->stream);
    free(baseline);
}
