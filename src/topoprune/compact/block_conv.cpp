// Direct stride-1 convolution over gathered channel groups (float32, NCHW), for topoprune.compact.
//
// Group g reads input channels in_idx[g, :ig] (-1 = padding slot, skipped) and writes output
// channels out_idx[g, :og] (-1 = padding row, dropped) with weights w[g, o, s, kh, kw]:
//   out[b, out_idx[g, o]] = clamp(bias + residual[b, out_idx[g, o]]
//                                 + sum_s conv2d(x[b, in_idx[g, s]], w[g, o, s]), lo, hi).
// The epilogue (bias, optional residual, clamp) is how a folded BatchNorm, a residual add and a
// ReLU (lo = 0, hi = inf) or ReLU6 (hi = 6) run in the same pass that writes the output.
//
// Each image is copied into a zero-padded buffer of planes (Hp x Wp). On a padded plane a
// stride-1 output row y, column c reads pad[(y + ky*dh) * Wp + c + kx*dw]: with q = y*Wp + c
// every tap is the flat plane shifted by a constant, so the whole plane is one 1-D loop of
// length Ho*Wp (the Wp - Wo extra columns per row are computed and dropped). The loop keeps a
// tile of OT output channels x NV vectors in registers and sums every (slot, tap) into it.
// Plain C++ (GCC/Clang vector extensions, std::thread): no Python or torch headers, so it
// compiles in seconds; it is loaded with ctypes.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace {

constexpr int64_t kLanes = 16;
constexpr int64_t kWorkPerThread = int64_t(1) << 21;
constexpr int64_t kMaxChunk = kLanes * 8;  // floats per chunk of the widest tile, with room
typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));

inline Vec load(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof(Vec));
  return v;
}

inline void store(float* p, Vec v) { std::memcpy(p, &v, sizeof(Vec)); }

struct Problem {
  const float* x;
  int64_t batch, channels, height, width;
  const float* w;
  int64_t groups, group_out, group_in, taps;
  const int64_t* in_idx;
  const int64_t* out_idx;
  const float* bias;
  const float* residual;
  float lo, hi;
  float* out;
  int64_t out_channels, out_height, out_width;
  int64_t pad_h, pad_w, padded_w, plane, flat_len;
  std::vector<int64_t> tap_offset;
};

// tile[o][q] = sum_s sum_t w[o][s][t] * plane_s[q + tap_offset[t]] for q in [0, len), OT rows.
template <int OT, int NV>
void tile_rows(const Problem& p, const float* __restrict pad, const int64_t* __restrict idx,
               const float* __restrict w, float* __restrict tile, int64_t tile_stride) {
  constexpr int64_t chunk = kLanes * NV;
  const int64_t w_row = p.group_in * p.taps;
  const int64_t* __restrict off = p.tap_offset.data();
  for (int64_t q0 = 0; q0 < p.flat_len; q0 += chunk) {
    Vec acc[OT][NV];
    for (int o = 0; o < OT; ++o)
      for (int v = 0; v < NV; ++v) acc[o][v] = Vec{};
    for (int64_t s = 0; s < p.group_in; ++s) {
      const int64_t c = idx[s];
      if (c < 0) continue;
      const float* src = pad + c * p.plane + q0;
      const float* ws = w + s * p.taps;
      for (int64_t t = 0; t < p.taps; ++t) {
        Vec in[NV];
        for (int v = 0; v < NV; ++v) in[v] = load(src + off[t] + v * kLanes);
        for (int o = 0; o < OT; ++o) {
          const float wt = ws[o * w_row + t];
          for (int v = 0; v < NV; ++v) acc[o][v] += wt * in[v];
        }
      }
    }
    for (int o = 0; o < OT; ++o)
      for (int v = 0; v < NV; ++v) store(tile + o * tile_stride + q0 + v * kLanes, acc[o][v]);
  }
}

using TileFn = void (*)(const Problem&, const float*, const int64_t*, const float*, float*,
                        int64_t);

TileFn pick_tile(int ot, int nv) {
  if (ot == 1 && nv == 1) return tile_rows<1, 1>;
  if (ot == 1 && nv == 2) return tile_rows<1, 2>;
  if (ot == 1 && nv == 4) return tile_rows<1, 4>;
  if (ot == 2 && nv == 1) return tile_rows<2, 1>;
  if (ot == 2 && nv == 2) return tile_rows<2, 2>;
  if (ot == 4 && nv == 1) return tile_rows<4, 1>;
  if (ot == 4 && nv == 2) return tile_rows<4, 2>;
  if (ot == 8 && nv == 1) return tile_rows<8, 1>;
  return nullptr;
}

void pad_image(const Problem& p, int64_t b, float* pad) {
  for (int64_t c = 0; c < p.channels; ++c) {
    const float* src = p.x + (b * p.channels + c) * p.height * p.width;
    float* dst = pad + c * p.plane + p.pad_h * p.padded_w + p.pad_w;
    for (int64_t y = 0; y < p.height; ++y)
      std::memcpy(dst + y * p.padded_w, src + y * p.width, p.width * sizeof(float));
  }
}

// Work item i covers image i / splits and the i % splits-th share of the groups.
void run_items(const Problem& p, TileFn tile_fn, int ot, int64_t splits, int64_t first,
               int64_t last) {
  const int64_t tile_stride = (p.flat_len + kMaxChunk - 1) / kMaxChunk * kMaxChunk;
  const int64_t slack = p.tap_offset.back() + kMaxChunk;
  std::vector<float> pad(p.channels * p.plane + slack, 0.0f);
  std::vector<float> tile(ot * tile_stride);
  int64_t padded_image = -1;
  for (int64_t item = first; item < last; ++item) {
    const int64_t b = item / splits, share = item % splits;
    if (b != padded_image) {
      pad_image(p, b, pad.data());
      padded_image = b;
    }
    const int64_t g0 = p.groups * share / splits, g1 = p.groups * (share + 1) / splits;
    for (int64_t g = g0; g < g1; ++g) {
      for (int64_t o0 = 0; o0 < p.group_out; o0 += ot) {
        const float* w = p.w + (g * p.group_out + o0) * p.group_in * p.taps;
        tile_fn(p, pad.data(), p.in_idx + g * p.group_in, w, tile.data(), tile_stride);
        for (int64_t o = 0; o < ot; ++o) {
          const int64_t oc = p.out_idx[g * p.group_out + o0 + o];
          if (oc < 0) continue;
          const float shift = p.bias ? p.bias[oc] : 0.0f;
          const float* row = tile.data() + o * tile_stride;
          const int64_t out_offset = (b * p.out_channels + oc) * p.out_height * p.out_width;
          float* dst = p.out + out_offset;
          const float* res = p.residual ? p.residual + out_offset : nullptr;
          for (int64_t y = 0; y < p.out_height; ++y)
            for (int64_t c = 0; c < p.out_width; ++c) {
              float value = row[y * p.padded_w + c] + shift;
              if (res) value += res[y * p.out_width + c];
              dst[y * p.out_width + c] = std::min(std::max(value, p.lo), p.hi);
            }
        }
      }
    }
  }
}

}  // namespace

// Returns 0 on success, 1 for an unsupported tile (OT must divide group_out), 2 when a thread
// or buffer could not be created.
extern "C" int topoprune_block_conv2d(const float* x, int64_t batch, int64_t channels,
                                      int64_t height, int64_t width, const float* w,
                                      int64_t groups, int64_t group_out, int64_t group_in,
                                      int64_t kernel_h, int64_t kernel_w, const int64_t* in_idx,
                                      const int64_t* out_idx, const float* bias,
                                      const float* residual, float lo, float hi, float* out,
                                      int64_t out_channels, int64_t pad_h, int64_t pad_w,
                                      int64_t dil_h, int64_t dil_w, int ot, int nv,
                                      int threads) {
  TileFn tile_fn = pick_tile(ot, nv);
  if (tile_fn == nullptr || group_out % ot != 0) return 1;
  const int64_t padded_h = height + 2 * pad_h, padded_w = width + 2 * pad_w;
  const int64_t out_height = padded_h - dil_h * (kernel_h - 1);
  std::vector<int64_t> tap_offset;
  for (int64_t a = 0; a < kernel_h; ++a)
    for (int64_t c = 0; c < kernel_w; ++c) tap_offset.push_back(a * dil_h * padded_w + c * dil_w);
  const Problem p{
      x,       batch,     channels,  height,   width,                                // input
      w,       groups,    group_out, group_in, kernel_h * kernel_w,                  // weight
      in_idx,  out_idx,   bias,      residual, lo,       hi,   out,  out_channels,   // maps
      out_height,         padded_w - dil_w * (kernel_w - 1),                         // output
      pad_h,   pad_w,     padded_w,  padded_h * padded_w, out_height * padded_w,     // padding
      tap_offset};  // in the order of Problem's members

  if (batch == 0) return 0;
  // A thread costs tens of microseconds to start: only work of kWorkPerThread multiply-adds or
  // more gets one (a batch-1 layer of a pruned net is often smaller than that).
  const int64_t macs = batch * groups * group_out * group_in * kernel_h * kernel_w *
                       out_height * (padded_w - dil_w * (kernel_w - 1));
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(threads, macs / kWorkPerThread));
  const int64_t splits = std::min(groups, std::max<int64_t>(1, (workers + batch - 1) / batch));
  const int64_t items = batch * splits;
  const int64_t used = std::min(workers, items);
  std::atomic<int> status{0};
  auto work = [&](int64_t t) {
    try {
      run_items(p, tile_fn, ot, splits, items * t / used, items * (t + 1) / used);
    } catch (...) {
      status = 2;
    }
  };
  std::vector<std::thread> pool;
  try {
    for (int64_t t = 1; t < used; ++t) pool.emplace_back(work, t);
  } catch (...) {
    status = 2;
  }
  work(0);
  for (auto& th : pool) th.join();
  return status;
}
