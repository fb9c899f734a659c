// Picks the LM-head backend that matches the main kernel table's choice.
#include "kernels/head_internal.h"
#include "kernels/kernels_internal.h"

namespace bitnet {

const HeadKernels* head_kernels_for(Isa isa) {
  using namespace kernels_impl;
#if defined(__x86_64__)
  return family_table_for(isa, kScalarHeadKernels, &kAvx2HeadKernels, &kAvx512HeadKernels);
#else
  return family_table_for<HeadKernels>(isa, kScalarHeadKernels, nullptr, nullptr);
#endif
}

const HeadKernels& head_kernels() {
  static const HeadKernels& chosen = *head_kernels_for(kernels().isa);
  return chosen;
}

void head_gemm(HeadType type, const HeadGemmArgs& a) {
  const HeadKernels& kn = head_kernels();
  switch (type) {
    case HeadType::F16: return kn.gemm_f16(a);
    case HeadType::Q8_0: return kn.gemm_q8_0(a);
    case HeadType::Q6_K: return kn.gemm_q6_k(a);
  }
}

}  // namespace bitnet
