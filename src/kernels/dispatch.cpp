// CPU feature detection and the choice of kernel backend.
#include <cstdlib>
#include <strings.h>
#include <utility>

#include "bitnet/log.h"
#include "kernels/kernels_internal.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace bitnet {
namespace {

struct CpuFeatures {
  bool avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vnni = false;
  bool avxvnni = false;
  bool neon = false, dotprod = false;
};

#if defined(__x86_64__)
// XCR0 says which register states the OS saves on context switch; without that the
// instructions fault even when CPUID lists them.
uint64_t read_xcr0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}
#endif

CpuFeatures detect_cpu() {
  CpuFeatures f;
#if defined(__x86_64__)
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  const bool osxsave = ecx & (1u << 27);
  const uint64_t xcr0 = osxsave ? read_xcr0() : 0;
  const bool ymm_state = (xcr0 & 0x6) == 0x6;     // XMM + YMM
  const bool zmm_state = (xcr0 & 0xE6) == 0xE6;   // + opmask, ZMM_Hi256, Hi16_ZMM
  f.avx = ymm_state && (ecx & (1u << 28));
  f.fma = f.avx && (ecx & (1u << 12));
  f.f16c = f.avx && (ecx & (1u << 29));
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    f.avx2 = f.avx && (ebx & (1u << 5));
    f.avx512f = zmm_state && (ebx & (1u << 16));
    f.avx512dq = f.avx512f && (ebx & (1u << 17));
    f.avx512bw = f.avx512f && (ebx & (1u << 30));
    f.avx512vl = f.avx512f && (ebx & (1u << 31));
    f.avx512vnni = f.avx512f && (ecx & (1u << 11));
    const unsigned max_subleaf = eax;
    if (max_subleaf >= 1) {
      __cpuid_count(7, 1, eax, ebx, ecx, edx);
      f.avxvnni = f.avx2 && (eax & (1u << 4));
    }
  }
#elif defined(__aarch64__)
  f.neon = true;  // Advanced SIMD is mandatory on AArch64
  f.dotprod = getauxval(AT_HWCAP) & HWCAP_ASIMDDP;
#endif
  return f;
}

const CpuFeatures& cpu() {
  static const CpuFeatures features = detect_cpu();
  return features;
}

bool supported(Isa isa) {
  const CpuFeatures& f = cpu();
  const bool avx2_set = f.avx2 && f.fma && f.f16c;
  switch (isa) {
    case Isa::Scalar: return true;
    case Isa::AVX2: return avx2_set;
    case Isa::AVXVNNI: return avx2_set && f.avxvnni;
    case Isa::AVX512VNNI:
      return avx2_set && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni;
    case Isa::NEON: return f.neon;
    case Isa::NEONDotProd: return f.neon && f.dotprod;
  }
  return false;
}

const Kernels* compiled_table(Isa isa) {
  using namespace kernels_impl;
  switch (isa) {
    case Isa::Scalar: return &kScalarKernels;
#if defined(__x86_64__)
    case Isa::AVX2: return &kAvx2Kernels;
    case Isa::AVXVNNI: return &kAvxVnniKernels;
    case Isa::AVX512VNNI: return &kAvx512VnniKernels;
#endif
#if defined(__aarch64__)
    case Isa::NEON: return &kNeonKernels;
    case Isa::NEONDotProd: return &kNeonDotProdKernels;
#endif
    default: return nullptr;
  }
}

constexpr Isa kAllIsas[] = {Isa::Scalar, Isa::AVX2, Isa::AVXVNNI, Isa::AVX512VNNI, Isa::NEON, Isa::NEONDotProd};

const Kernels& choose_kernels() {
  const std::vector<Isa> isas = available_isas();
  // Preference: the last available in kAllIsas order (AVX-512 VNNI over AVX-VNNI over AVX2).
  const Kernels* best = kernels_for(isas.back());
  const char* wanted = std::getenv("BITNET_ISA");
  if (!wanted || !*wanted) return *best;
  Isa isa;
  if (!parse_isa(wanted, isa)) {
    log(LogLevel::Warn, std::string("bitnet: BITNET_ISA=") + wanted + " is not a kernel set (" + isa_names() +
                            "); using " + isa_name(best->isa) + "\n");
    return *best;
  }
  if (const Kernels* k = kernels_for(isa)) return *k;
  log(LogLevel::Warn, std::string("bitnet: BITNET_ISA=") + wanted + " is not available on this CPU; using " +
                          isa_name(best->isa) + "\n");
  return *best;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::AVX2: return "avx2";
    case Isa::AVXVNNI: return "avxvnni";
    case Isa::AVX512VNNI: return "avx512vnni";
    case Isa::NEON: return "neon";
    case Isa::NEONDotProd: return "neon-dotprod";
  }
  return "unknown";
}

bool parse_isa(const char* name, Isa& out) {
  for (Isa isa : kAllIsas) {
    if (strcasecmp(name, isa_name(isa)) != 0) continue;
    out = isa;
    return true;
  }
  return false;
}

std::string isa_names() {
  std::string names;
  for (Isa isa : kAllIsas) names += (names.empty() ? "" : ", ") + std::string(isa_name(isa));
  return names;
}

const Kernels* kernels_for(Isa isa) { return supported(isa) ? compiled_table(isa) : nullptr; }

ComputeProbes compute_probes(Isa isa) {
#if defined(__x86_64__)
  if (isa == Isa::AVX2 && supported(isa)) return {kernels_impl::avx2::probe_int8_macs, kernels_impl::avx2::probe_f32_fmas};
#endif
  (void)isa;
  return {};
}

uint64_t read_probe_sum(const uint64_t* p, int64_t n) {
#if defined(__x86_64__)
  if (supported(Isa::AVX2)) return kernels_impl::avx2::probe_read_sum(p, n);
#endif
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;  // independent sums keep several loads in flight
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a0 += p[i];
    a1 += p[i + 1];
    a2 += p[i + 2];
    a3 += p[i + 3];
  }
  for (; i < n; ++i) a0 += p[i];
  return a0 + a1 + a2 + a3;
}

std::vector<Isa> available_isas() {
  std::vector<Isa> isas;
  for (Isa isa : kAllIsas)
    if (kernels_for(isa)) isas.push_back(isa);
  return isas;
}

const Kernels& kernels() {
  static const Kernels& chosen = choose_kernels();
  return chosen;
}

std::string cpu_features_line() {
  const CpuFeatures& f = cpu();
  const std::pair<const char*, bool> items[] = {
      {"AVX", f.avx},     {"AVX2", f.avx2},       {"AVX512", f.avx512f}, {"AVX512_VNNI", f.avx512vnni},
      {"AVX_VNNI", f.avxvnni}, {"F16C", f.f16c},   {"FMA", f.fma},        {"NEON", f.neon},
      {"ARM_DOTPROD", f.dotprod},
  };
  std::string line;
  for (const auto& [name, on] : items) {
    if (!line.empty()) line += " | ";
    line += std::string(name) + " = " + (on ? "1" : "0");
  }
  return line;
}

}  // namespace bitnet
