// The dtype dispatcher: one C entry point per op, one template instance per tensor element type.
#pragma once
#include <cuda_fp16.h>

#include "check.h"

#define STYLECAM_DISPATCH_DTYPE(dtype, T, ...)        \
  switch (dtype) {                                    \
    case STYLECAM_FLOAT32: {                          \
      using T = float;                                \
      return __VA_ARGS__;                             \
    }                                                 \
    case STYLECAM_FLOAT16: {                          \
      using T = __half;                               \
      return __VA_ARGS__;                             \
    }                                                 \
    default:                                          \
      return cudaErrorInvalidValue;                   \
  }
