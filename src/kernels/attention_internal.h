// Private to src/kernels: the per-backend attention tables.
#pragma once
#include "bitnet/attention_kernels.h"

namespace bitnet::kernels_impl {

extern const AttentionKernels kScalarAttentionKernels;
#if defined(__x86_64__)
extern const AttentionKernels kAvx2AttentionKernels;
extern const AttentionKernels kAvx512AttentionKernels;
#endif

}  // namespace bitnet::kernels_impl
