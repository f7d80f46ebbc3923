// Intentionally empty: SwiftPM needs one source file in a C target; the API is the
// static inline functions of include/CZlib.h.
#include "CZlib.h"
