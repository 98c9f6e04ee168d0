// What the library can do here: devices, error names, compiled architectures.
#include <cuda_runtime.h>

#include "stylecam_ops.h"

extern "C" int stylecam_ops_device_count(int* count) {
  *count = 0;
  return cudaGetDeviceCount(count);
}

extern "C" const char* stylecam_ops_error_string(int error) {
  return cudaGetErrorString(static_cast<cudaError_t>(error));
}

extern "C" const char* stylecam_ops_architectures(void) { return STYLECAM_ARCHITECTURES; }
