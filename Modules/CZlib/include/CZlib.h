#ifndef VCOM_CZLIB_H
#define VCOM_CZLIB_H
#include <zlib.h>

// deflateInit2 and inflateInit2 are macros (they pass the library version and
// z_stream size); Swift cannot call macros, so these wrappers do.
static inline int vcom_deflateInit2(z_streamp strm, int level, int windowBits, int memLevel) {
    return deflateInit2(strm, level, Z_DEFLATED, windowBits, memLevel, Z_DEFAULT_STRATEGY);
}

static inline int vcom_inflateInit2(z_streamp strm, int windowBits) {
    return inflateInit2(strm, windowBits);
}
#endif
