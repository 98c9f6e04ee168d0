#include "bgr8_to_tensor.h"
#include "dispatch.h"
#include "to_tensor.cuh"

namespace stylecam {

template <typename T>
cudaError_t launch_bgr8_to_tensor(const uint8_t* src, size_t src_pitch, int src_h, int src_w, T* dst,
                                  stylecam_geometry g, cudaStream_t stream) {
  return launch_to_tensor(Bgr8Source{src, src_pitch}, src_h, src_w, dst, g, stream);
}

}  // namespace stylecam

using namespace stylecam;

static bool valid_args(const uint8_t* src, size_t src_pitch, int src_h, int src_w, void* dst,
                       const stylecam_geometry& g) {
  return src && dst && src_h > 0 && src_w > 0 && src_pitch >= 3 * static_cast<size_t>(src_w) && valid(g);
}

extern "C" int stylecam_bgr8_to_tensor(const uint8_t* src, size_t src_pitch, int src_h, int src_w, void* dst,
                                       int dtype, stylecam_geometry g, void* stream) {
  STYLECAM_REQUIRE(valid_args(src, src_pitch, src_h, src_w, dst, g));
  STYLECAM_DISPATCH_DTYPE(dtype, T, launch_bgr8_to_tensor(src, src_pitch, src_h, src_w, static_cast<T*>(dst), g,
                                                          static_cast<cudaStream_t>(stream)))
}

extern "C" int stylecam_host_bgr8_to_tensor(const uint8_t* src, size_t src_pitch, int src_h, int src_w, void* dst,
                                            int dtype, stylecam_geometry g) {
  STYLECAM_REQUIRE(valid_args(src, src_pitch, src_h, src_w, dst, g));
  STYLECAM_DISPATCH_DTYPE(dtype, T, host_to_tensor(Bgr8Source{src, src_pitch}, src_h, src_w, static_cast<T*>(dst), g))
}
