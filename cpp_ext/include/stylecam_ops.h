/* stylecam CUDA pre/post-processing: a C ABI, so that ctypes, pycuda, torch and cupy callers share it.
 *
 * Every function takes raw pointers, a row pitch in bytes for 8-bit images, and a CUDA stream, and returns a
 * cudaError_t value (0 = success; stylecam_ops_error_string() names the others). Nothing here allocates or
 * synchronizes: work is queued on `stream`.
 *
 * The network tensor is 1×3×out_h×out_w, RGB, planar, float32 or float16 in [0, 1], dense. The frame, resized
 * to content_h×content_w (area averaging down, as cv2.resize INTER_AREA; bilinear up, as INTER_LINEAR), sits at
 * (top, left) in it; every other tensor pixel reflects the content (numpy's "symmetric" mode: the edge pixel
 * repeats). This is the contract of stylecam.frames.to_tensor, the NumPy reference.
 *
 * Each stylecam_host_* twin runs the same per-pixel code on the CPU over host pointers: the kernels'
 * arithmetic can be checked against the reference on a machine without a GPU.
 */
#ifndef STYLECAM_OPS_H
#define STYLECAM_OPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum stylecam_dtype { STYLECAM_FLOAT32 = 0, STYLECAM_FLOAT16 = 1 };

/* Where the frame lands in the network tensor. */
typedef struct {
  int out_h, out_w;         /* tensor height and width */
  int content_h, content_w; /* the frame's size in the tensor (after the optional resize) */
  int top, left;            /* the content's offset: the margin */
} stylecam_geometry;

/* BGR8 H×W×3 (pitched) → the network tensor. */
int stylecam_bgr8_to_tensor(const uint8_t* src, size_t src_pitch, int src_h, int src_w, void* dst, int dtype,
                            stylecam_geometry g, void* stream);

/* NV12 (a Y plane, then an interleaved UV plane at half resolution; BT.601 limited range, as OpenCV's
 * COLOR_YUV2BGR_NV12) → the network tensor. src_h and src_w are even. */
int stylecam_nv12_to_tensor(const uint8_t* y, size_t y_pitch, const uint8_t* uv, size_t uv_pitch, int src_h,
                            int src_w, void* dst, int dtype, stylecam_geometry g, void* stream);

/* Network output (1×3×g.out_h×g.out_w) → BGR8 dst_h×dst_w×3: crop the content at (top, left), clamp to [0, 1];
 * where dst_h×dst_w is not the content's size (the network ran at a scale of the frame), round it to 8 bits and
 * resize it bilinearly (cv2.resize INTER_LINEAR); blend with `original` (dst_h×dst_w, pitched) by strength, round
 * to nearest even. dst may be original. */
int stylecam_tensor_to_bgr8(const void* src, int dtype, stylecam_geometry g, int dst_h, int dst_w,
                            const uint8_t* original, size_t original_pitch, uint8_t* dst, size_t dst_pitch,
                            float strength, void* stream);

int stylecam_host_bgr8_to_tensor(const uint8_t* src, size_t src_pitch, int src_h, int src_w, void* dst, int dtype,
                                 stylecam_geometry g);
int stylecam_host_nv12_to_tensor(const uint8_t* y, size_t y_pitch, const uint8_t* uv, size_t uv_pitch, int src_h,
                                 int src_w, void* dst, int dtype, stylecam_geometry g);
int stylecam_host_tensor_to_bgr8(const void* src, int dtype, stylecam_geometry g, int dst_h, int dst_w,
                                 const uint8_t* original, size_t original_pitch, uint8_t* dst, size_t dst_pitch,
                                 float strength);

/* How many CUDA devices this process can use; the return value says why when none. */
int stylecam_ops_device_count(int* count);
const char* stylecam_ops_error_string(int error);
/* The SM architectures compiled in, e.g. "75;86;87;89;90". */
const char* stylecam_ops_architectures(void);

#ifdef __cplusplus
}
#endif
#endif
