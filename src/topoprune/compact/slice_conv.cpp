// Direct stride-1 convolution with compressed kernel slices (float32, NCHW), for
// topoprune.compact.sparse_conv: irregular masks, where every output channel keeps its own
// subset of the input channels.
//
// The weights are CSR over (out, in) kernel slices: output channel o reads input channels
// col[row_ptr[o] .. row_ptr[o+1]) with weights w[k, kh, kw] for k in that range, so
//   out[b, o] = clamp(bias[o] + residual[b, o] + sum_k conv2d(x[b, col[k]], w[k]), lo, hi)
// where bias and residual are optional: the epilogue of a folded BatchNorm, a residual add and a
// ReLU (lo = 0, hi = inf) or ReLU6 (hi = 6), in the pass that writes the output (no clamp: lo =
// -inf, hi = inf). As in block_conv.cpp, a NaN passes the clamp unchanged.
//
// Five ways to fill 16-float vectors, chosen per call by auto_mode (mode 0; see there) or
// forced:
//
// - "batched": 16 images share a vector. Output rows go in bands of TR rows; for a band, the
//   input rows it reads (its window: TR + (kh - 1) * dh padded rows, all channels) of a group of
//   16 images are packed, through 16 x 16 transposes, as [channel][row][column][image], so that
//   every element is one aligned vector of the 16 images' values. A tile of TR x TC output
//   positions is TR*TC accumulator vectors; every (kept slice k, tap t) adds its broadcast
//   weight times the TR*TC input vectors under the tile, shifted by the tap. No lane is wasted
//   whatever the plane size, and 3x3 kernels (dilation 1) get a form that loads each input row
//   of the window once and uses it for its three horizontal taps. While one slice is summed,
//   the next slice's window rows are prefetched: slices jump between channel planes, which no
//   hardware prefetcher predicts. The band of each output channel is then transposed back to
//   NCHW, 16 positions at a time, through the epilogue.
// - "planar": one image at a time, as in block_conv.cpp. On a zero-padded plane (Hp x Wp),
//   output row y, column c reads pad[(y + ky*dh) * Wp + c + kx*dw]: with q = y*Wp + c every
//   tap is the flat plane shifted by a constant, so the plane is one 1-D loop of length Ho*Wp
//   (the Wp - Wo extra columns per row are computed and dropped), NV accumulator vectors per
//   chunk of it. One load per (tap, vector), none reused: L2 bandwidth bounds it.
// - "rows" (3x3 kernels at dilation 1): one image at a time, 16 columns of an output row per
//   vector, register tiles of TR rows x TC vectors; each padded input row under a tile is
//   loaded once per horizontal tap and serves the three output rows it reaches. Few images (up
//   to 16) on planes from 8 wide, where batched would leave lanes empty, and no transposes.
// - "tiny" (planes of at most 16 values: 4x4, 2x2): a vector holds a whole plane (of 16 / size
//   images); each tap's view of it is one permute.
// - "flat" ("same" convolutions on planes of more than 16 values): the unpadded plane
//   flattened, each tap's view of an output vector one permute of the two vectors it straddles;
//   every lane in use on 8x8 planes, where rows fills half of them.
//
// Runs: consecutive output channels that keep the same input channels (block-structured masks:
// the channels of an output block read the same input blocks) are computed together by rows
// and batched's 3x3 form (two or four at a time), tiny and flat (two, four or eight): every
// input vector loaded or permuted serves all of them, which relieves the loads (from L2: the
// bound of all forms at batch 1) and the permutes.
//
// Loop nest (batched): image group -> band -> output channel or run (of this thread's share) ->
// tile of the band -> kept slice -> tap -> TR x TC vectors. (planar): image -> output channel ->
// chunk -> kept slice -> tap -> NV vectors. (rows): image and band -> channel or run -> tile ->
// kept slice -> input row -> tap column -> vector -> output rows. (tiny, flat): image (group) ->
// channel or run -> (flat: tile of vectors) -> kept slice -> tap -> vectors.
//
// Threads take work items (image group and band, or image; times a share of the output
// channels, cut so that shares hold about as many kept slices) from a shared counter, so that a
// thread slowed by other load simply does fewer. Plain C++ (GCC/Clang vector extensions,
// std::thread): no Python or torch headers; it is loaded with ctypes. A second entry point,
// topoprune_sparse_linear, at the end, computes a linear layer with the same CSR layout.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace {

constexpr int64_t kLanes = 16;
typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));  // 64-byte aligned

inline Vec load(const float* p) {  // any alignment
  Vec v;
  std::memcpy(&v, p, sizeof(Vec));
  return v;
}

inline void store(float* p, Vec v) { std::memcpy(p, &v, sizeof(Vec)); }

// A float buffer aligned to 64 bytes (whole vectors), zero-filled.
struct Buffer {
  std::vector<Vec> data;
  explicit Buffer(int64_t floats) : data((floats + kLanes - 1) / kLanes, Vec{}) {}
  float* get() { return reinterpret_cast<float*>(data.data()); }
};

// Scratch memory kept between calls (the rows form's padded planes, some hundred KB at batch
// 1), so that a call does not pay for fresh pages and their zero fill: a Scratch takes a
// block from the pool (growing it when too small) and gives it back when it goes. Its content
// is whatever the last user left: the users write every float they read.
class ScratchPool {
 public:
  std::unique_ptr<Vec[]> take(int64_t vecs, int64_t& capacity) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < free_.size(); ++i)
      if (free_[i].second >= vecs) {
        auto block = std::move(free_[i].first);
        capacity = free_[i].second;
        free_.erase(free_.begin() + i);
        return block;
      }
    capacity = vecs;
    return std::unique_ptr<Vec[]>(new Vec[vecs]);
  }
  void give(std::unique_ptr<Vec[]> block, int64_t capacity) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (free_.size() < 8) free_.emplace_back(std::move(block), capacity);
  }

 private:
  std::mutex mutex_;
  std::vector<std::pair<std::unique_ptr<Vec[]>, int64_t>> free_;
};

ScratchPool& scratch_pool() {
  static ScratchPool* pool = new ScratchPool;  // never destroyed: threads may outlive exit
  return *pool;
}

struct Scratch {
  std::unique_ptr<Vec[]> block;
  int64_t capacity = 0;
  explicit Scratch(int64_t floats) {
    block = scratch_pool().take(std::max<int64_t>(1, (floats + kLanes - 1) / kLanes), capacity);
  }
  ~Scratch() { scratch_pool().give(std::move(block), capacity); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  float* get() { return reinterpret_cast<float*>(block.get()); }
};

struct Problem {
  const float* x;
  int64_t batch, channels, height, width;
  const float* w;
  const int64_t* row_ptr;
  const int64_t* col;
  int64_t out_channels, taps;
  const float* bias;
  const float* residual;
  float lo, hi;
  bool clamped;  // lo > -inf or hi < inf
  float* out;
  int64_t out_height, out_width, pad_h, pad_w;
  std::vector<int64_t> tap_row, tap_col;  // tap t: padded input (y + tap_row[t], c + tap_col[t])
};

// bias + residual, then the clamp: the epilogue of one output value at flat NCHW index `at`.
inline float finish(const Problem& p, float value, int64_t oc, int64_t at) {
  if (p.bias) value += p.bias[oc];
  if (p.residual) value += p.residual[at];
  return std::min(std::max(value, p.lo), p.hi);  // NaN stays NaN
}

// Output channel range of share s out of n, cut so that shares hold about the same work
// (kept slices times taps, plus one unit per channel for the epilogue).
int64_t share_start(const Problem& p, int64_t s, int64_t n) {
  const auto cost = [&](int64_t o) { return p.row_ptr[o] * p.taps + o; };
  const int64_t goal = cost(p.out_channels) * s / n;
  int64_t lo = 0, hi = p.out_channels;
  while (lo < hi) {  // first o with cost(o) >= goal
    const int64_t mid = (lo + hi) / 2;
    if (cost(mid) < goal)
      lo = mid + 1;
    else
      hi = mid;
  }
  return s == n ? p.out_channels : lo;
}

// ---------------------------------------------------------------------------------------------
// Batched: 16 images per vector.

typedef int32_t IVec __attribute__((vector_size(kLanes * sizeof(int32_t))));

#if defined(__GNUC__) && !defined(__clang__)
// One step of the block-swap transpose: rows i and i + D (bit D of i clear) exchange the D x D
// blocks where bit D of the row and of the column differ (one two-source permute per row).
template <int D>
inline void transpose_step(Vec* v) {
  IVec low, high;
  for (int j = 0; j < kLanes; ++j) {
    low[j] = (j & D) ? kLanes + j - D : j;  // row i: own columns with bit D clear, then row i+D's
    high[j] = (j & D) ? kLanes + j : j + D;
  }
  for (int i = 0; i < kLanes; ++i)
    if ((i & D) == 0) {
      const Vec a = v[i], b = v[i + D];
      v[i] = __builtin_shuffle(a, b, low);
      v[i + D] = __builtin_shuffle(a, b, high);
    }
}
#endif

// Transposes 16 vectors in place: afterwards lane j of v[i] holds what lane i of v[j] held.
inline void transpose16(Vec* v) {
#if defined(__GNUC__) && !defined(__clang__)
  transpose_step<8>(v);
  transpose_step<4>(v);
  transpose_step<2>(v);
  transpose_step<1>(v);
#else
  float m[kLanes][kLanes];
  std::memcpy(m, v, sizeof(m));
  for (int i = 0; i < kLanes; ++i)
    for (int j = 0; j < kLanes; ++j) v[i][j] = m[j][i];
#endif
}

// The epilogue on a vector of 16 consecutive outputs starting at flat NCHW index `at`.
inline Vec finish_vec(const Problem& p, Vec v, int64_t oc, int64_t at) {
  if (p.bias) v += p.bias[oc];
  if (p.residual) v += load(p.residual + at);
  if (p.clamped) {  // bitwise selects (NaN compares false, so it stays)
    const IVec low = v < p.lo, high = v > p.hi;
    v = (Vec)(((IVec)v & ~low) | ((IVec)(p.lo + Vec{}) & low));
    v = (Vec)(((IVec)v & ~high) | ((IVec)(p.hi + Vec{}) & high));
  }
  return v;
}

struct Batched {
  int64_t rows, cols;       // output plane rounded up to whole tiles
  int64_t window_rows;      // padded input rows under one tile row: TR + (kh - 1) * dh
  int64_t padded_w;         // packed row length: cols + (kw - 1) * dw
  int64_t plane;            // floats per channel of the packed window: window_rows * padded_w * 16
  std::vector<int64_t> tap_offset;  // floats from an output position's input vector to tap t's
};

// Packs the input rows that output rows [y0, y0 + TR) read (padded rows y0 .. y0 +
// window_rows) of images [b0, b0 + count), all channels, into the layout
// [channel][window row][column][image], 16 positions at a time through a transpose. Rows outside
// the image are zeroed; the border columns stay zero (the buffer is zero-filled once and they are
// never written). Lanes of missing images (count < 16) are zero or stale: they only feed lanes
// that are never written out.
void pack_window(const Problem& p, const Batched& g, int64_t b0, int64_t count, int64_t y0,
                 float* window) {
  const int64_t hw = p.height * p.width, image = p.channels * hw;
  const int64_t top = y0 - p.pad_h;  // the input row at window row 0 (may be outside)
  const int64_t first = std::max<int64_t>(0, top) * p.width;  // flat input range packed
  const int64_t last = std::min<int64_t>(p.height, top + g.window_rows) * p.width;
  const int64_t row_floats = g.padded_w * kLanes;
  for (int64_t c = 0; c < p.channels; ++c) {
    float* plane = window + c * g.plane;
    for (int64_t r = 0; r < g.window_rows; ++r)
      if (top + r < 0 || top + r >= p.height)
        std::memset(plane + r * row_floats, 0, row_floats * sizeof(float));
    const float* src = p.x + (b0 * p.channels + c) * hw;  // image b0 + i at src + i * image
    const auto packed_at = [&](int64_t q) {  // flat input position -> its vector in the window
      return (q / p.width - top) * row_floats + (q % p.width + p.pad_w) * kLanes;
    };
    int64_t q = first;
    for (; q + kLanes <= last; q += kLanes) {
      Vec v[kLanes];
      for (int64_t i = 0; i < kLanes; ++i) v[i] = i < count ? load(src + i * image + q) : Vec{};
      transpose16(v);  // v[j]: position q + j of the 16 images
      int64_t row = q / p.width - top, col = q % p.width + p.pad_w;
      for (int64_t j = 0; j < kLanes; ++j) {
        store(plane + row * row_floats + col * kLanes, v[j]);
        if (++col == p.width + p.pad_w) col = p.pad_w, ++row;
      }
    }
    for (; q < last; ++q)
      for (int64_t i = 0; i < count; ++i) plane[packed_at(q) + i] = src[i * image + q];
  }
}

// Prefetches the first line of each window row of the slice after k (or, after the last, of
// the next tile's first slice); the hardware prefetchers follow each row from there.
inline void prefetch_next(const Problem& p, const Batched& g, const float* corner, int64_t k,
                          int64_t k0, int64_t k1, int64_t tile_cols) {
  const float* next = k + 1 < k1 ? corner + p.col[k + 1] * g.plane
                                 : corner + tile_cols * kLanes + p.col[k0] * g.plane;
  for (int64_t r = 0; r < g.window_rows; ++r) __builtin_prefetch(next + r * g.padded_w * kLanes);
}

// One band of output channel o (TR output rows, from the packed window), TC columns at a time.
// For each tile, every kept slice k and tap t adds w[k, t] times the TR x TC input vectors under
// the tile (shifted by the tap) to TR x TC accumulators. Meanwhile the next slice's window (or
// the next tile's first) is prefetched: slices jump between planes, which no prefetcher
// predicts. The result goes to band, laid out [row][column][image] with g.cols columns.
template <int TR, int TC>
void batched_band(const Problem& p, const Batched& g, const float* __restrict pk, int64_t o,
                  float* __restrict band) {
  const int64_t k0 = p.row_ptr[o], k1 = p.row_ptr[o + 1];
  const int64_t* __restrict off = g.tap_offset.data();
  for (int64_t x0 = 0; x0 < g.cols; x0 += TC) {
    Vec acc[TR][TC];
    for (int r = 0; r < TR; ++r)
      for (int j = 0; j < TC; ++j) acc[r][j] = Vec{};
    const float* corner = pk + x0 * kLanes;
    for (int64_t k = k0; k < k1; ++k) {
      const float* src = corner + p.col[k] * g.plane;
      prefetch_next(p, g, corner, k, k0, k1, TC);
      const float* wk = p.w + k * p.taps;
      for (int64_t t = 0; t < p.taps; ++t) {
        const float wt = wk[t];
        const Vec* s = reinterpret_cast<const Vec*>(src + off[t]);
        for (int r = 0; r < TR; ++r)
          for (int j = 0; j < TC; ++j) acc[r][j] += wt * s[r * g.padded_w + j];
      }
    }
    for (int r = 0; r < TR; ++r)
      for (int j = 0; j < TC; ++j)
        *reinterpret_cast<Vec*>(band + (r * g.cols + x0 + j) * kLanes) = acc[r][j];
  }
}

// batched_band for 3x3 kernels at dilation 1, the common case, for OT output channels
// [o, o + OT) of one run (identical kept input channels: slice j of channel o + u is
// row_ptr[o + u] + j; OT = 1 is a single channel). Per slice, each of the TR + 2 input rows under
// the tile is loaded once (TC + 2 vectors, kept in registers) and serves the three horizontal
// taps of each output row it reaches, for all OT channels, so the loop issues about a third of
// the loads of the general form and is bound by the multiply-adds alone. Channel o + u's band
// goes to band + u * TR * g.cols * 16.
template <int OT, int TR, int TC>
void batched_run_3x3(const Problem& p, const Batched& g, const float* __restrict pk, int64_t o,
                     float* __restrict band) {
  const int64_t k0 = p.row_ptr[o], k1 = p.row_ptr[o + 1];
  const int64_t band_size = TR * g.cols * kLanes;
  for (int64_t x0 = 0; x0 < g.cols; x0 += TC) {
    Vec acc[OT][TR][TC];
    for (int u = 0; u < OT; ++u)
      for (int r = 0; r < TR; ++r)
        for (int j = 0; j < TC; ++j) acc[u][r][j] = Vec{};
    const float* corner = pk + x0 * kLanes;
    for (int64_t k = k0; k < k1; ++k) {
      const Vec* src = reinterpret_cast<const Vec*>(corner + p.col[k] * g.plane);
      prefetch_next(p, g, corner, k, k0, k1, TC);
      const float* wk[OT];
      for (int u = 0; u < OT; ++u) wk[u] = p.w + (p.row_ptr[o + u] + k - k0) * 9;
#pragma GCC unroll 16
      for (int in_row = 0; in_row < TR + 2; ++in_row) {
        Vec in[TC + 2];
#pragma GCC unroll 32
        for (int j = 0; j < TC + 2; ++j) in[j] = src[in_row * g.padded_w + j];
#pragma GCC unroll 4
        for (int ky = 0; ky < 3; ++ky) {
          const int r = in_row - ky;
          if (r < 0 || r >= TR) continue;
#pragma GCC unroll 4
          for (int kx = 0; kx < 3; ++kx)
#pragma GCC unroll 4
            for (int u = 0; u < OT; ++u) {
              const float wt = wk[u][ky * 3 + kx];
#pragma GCC unroll 32
              for (int j = 0; j < TC; ++j) acc[u][r][j] += wt * in[j + kx];
            }
        }
      }
    }
    for (int u = 0; u < OT; ++u)
      for (int r = 0; r < TR; ++r)
        for (int j = 0; j < TC; ++j)
          *reinterpret_cast<Vec*>(band + u * band_size + (r * g.cols + x0 + j) * kLanes) =
              acc[u][r][j];
  }
}

// Writes a band of output channel o (rows [y0, y0 + band_rows) of images b0 .. b0 + count)
// back to NCHW through the epilogue: when the band has no padding columns its positions are
// consecutive in the output too, and 16 of them at a time are transposed and stored as
// vectors; the rest goes one value at a time.
void batched_finish(const Problem& p, const Batched& g, const float* band, int64_t band_rows,
                    int64_t o, int64_t y0, int64_t b0, int64_t count) {
  const int64_t hw = p.out_height * p.out_width;
  const int64_t rows = std::min(band_rows, p.out_height - y0);
  const int64_t first = y0 * p.out_width;  // the band's first position in an output plane
  int64_t done = 0;
  if (g.cols == p.out_width) {
    for (; done + kLanes <= rows * p.out_width; done += kLanes) {
      Vec v[kLanes];
      for (int64_t j = 0; j < kLanes; ++j)
        v[j] = *reinterpret_cast<const Vec*>(band + (done + j) * kLanes);
      transpose16(v);  // v[i]: image b0 + i at the 16 positions
      for (int64_t i = 0; i < count; ++i) {
        const int64_t at = ((b0 + i) * p.out_channels + o) * hw + first + done;
        store(p.out + at, finish_vec(p, v[i], o, at));
      }
    }
  }
  for (int64_t q = done; q < rows * p.out_width; ++q) {
    const float* lanes = band + ((q / p.out_width) * g.cols + q % p.out_width) * kLanes;
    for (int64_t i = 0; i < count; ++i) {
      const int64_t at = ((b0 + i) * p.out_channels + o) * hw + first + q;
      p.out[at] = finish(p, lanes[i], o, at);
    }
  }
}

using BatchedFn = void (*)(const Problem&, const Batched&, const float*, int64_t, float*);

struct BatchedTile {
  int rows, cols;
  BatchedFn general, fast_3x3;  // fast_3x3: null where its registers would not fit
  BatchedFn run2, run4;         // the 3x3 form for two / four channels of a run (or null): the
                                // same rows, cols / 2 or / 4 columns per register tile
};

// The register tiles compiled. The general form keeps TR*TC accumulators (at most 24) and the
// broadcast weight in the 32 vector registers of AVX-512; the 3x3 form also holds TC + 2 input
// vectors, so it exists for the tiles where all of that fits.
const BatchedTile kBatchedTiles[] = {
    {2, 8, batched_band<2, 8>, batched_run_3x3<1, 2, 8>, batched_run_3x3<2, 2, 4>,
     batched_run_3x3<4, 2, 2>},
    {4, 4, batched_band<4, 4>, batched_run_3x3<1, 4, 4>, batched_run_3x3<2, 4, 2>,
     batched_run_3x3<4, 4, 1>},
    {1, 8, batched_band<1, 8>, batched_run_3x3<1, 1, 8>, batched_run_3x3<2, 1, 4>,
     batched_run_3x3<4, 1, 2>},
    {8, 2, batched_band<8, 2>, batched_run_3x3<1, 8, 2>, batched_run_3x3<2, 8, 1>, nullptr},
    {2, 6, batched_band<2, 6>, batched_run_3x3<1, 2, 6>, batched_run_3x3<2, 2, 3>, nullptr},
    {2, 4, batched_band<2, 4>, batched_run_3x3<1, 2, 4>, batched_run_3x3<2, 2, 2>,
     batched_run_3x3<4, 2, 1>},
    {4, 2, batched_band<4, 2>, batched_run_3x3<1, 4, 2>, batched_run_3x3<2, 4, 1>, nullptr},
    {1, 4, batched_band<1, 4>, batched_run_3x3<1, 1, 4>, batched_run_3x3<2, 1, 2>,
     batched_run_3x3<4, 1, 1>},
    {1, 1, batched_band<1, 1>, batched_run_3x3<1, 1, 1>, nullptr, nullptr},
    {6, 4, batched_band<6, 4>, nullptr, nullptr, nullptr},  // (its 3x3 form spills registers)
    {3, 8, batched_band<3, 8>, nullptr, nullptr, nullptr},
    {4, 6, batched_band<4, 6>, nullptr, nullptr, nullptr},
    {1, 16, batched_band<1, 16>, nullptr, nullptr, nullptr},
};

// The tile with the least estimated work per output plane: positions computed (the plane
// rounded up to whole tiles) times one plus the per-(slice, tap) overhead shared by the tile's
// TR*TC positions: the weight broadcast, and the cache lines of the input window the slice
// brings in (a quarter each, measured). For 3x3 kernels only tiles with the 3x3 form compete.
const BatchedTile* pick_batched(int64_t out_h, int64_t out_w, int64_t reach_h, int64_t reach_w,
                                bool is_3x3) {
  const BatchedTile* best = nullptr;
  double best_cost = 0;
  for (const auto& tile : kBatchedTiles) {
    if (is_3x3 && tile.fast_3x3 == nullptr) continue;
    const int64_t rows = (out_h + tile.rows - 1) / tile.rows * tile.rows;
    const int64_t cols = (out_w + tile.cols - 1) / tile.cols * tile.cols;
    const double lines = double((tile.rows + reach_h) * (tile.cols + reach_w));
    const double per_position = (1.0 + 0.25 * lines) / (tile.rows * tile.cols);
    const double cost = double(rows * cols) * (1.0 + per_position);
    if (best == nullptr || cost < best_cost) best = &tile, best_cost = cost;
  }
  return best;
}

const BatchedTile* find_batched(int rows, int cols) {
  for (const auto& tile : kBatchedTiles)
    if (tile.rows == rows && tile.cols == cols) return &tile;
  return nullptr;
}

// Work items, handed out one at a time through `next`: item i is band (i / splits) % bands of
// image group i / (splits * bands), for the (i % splits)-th output channel share. A band is TR
// output rows: its window (the input rows it reads, all channels) is packed, then every output
// channel of the share runs over it while it stays in cache. Consecutive items share a window,
// which is packed again only when the thread moves to another one.
void batched_worker(const Problem& p, const BatchedTile& tile, bool use_3x3, int64_t splits,
                    int64_t items, const std::vector<int64_t>& run,
                    std::atomic<int64_t>& next) {
  const BatchedFn band_fn = use_3x3 ? tile.fast_3x3 : tile.general;
  Batched g;
  g.rows = (p.out_height + tile.rows - 1) / tile.rows * tile.rows;
  g.cols = (p.out_width + tile.cols - 1) / tile.cols * tile.cols;
  g.window_rows = tile.rows + p.tap_row.back();
  g.padded_w = g.cols + p.tap_col.back();
  g.plane = g.window_rows * g.padded_w * kLanes;
  for (int64_t t = 0; t < p.taps; ++t)
    g.tap_offset.push_back((p.tap_row[t] * g.padded_w + p.tap_col[t]) * kLanes);
  const int64_t bands = g.rows / tile.rows;
  // + one tile: the prefetch after a band's last tile points just past its last plane
  Buffer window(p.channels * g.plane + tile.cols * kLanes);
  const int64_t band_size = tile.rows * g.cols * kLanes;
  Buffer band(4 * band_size);  // up to four channels of a run
  int64_t packed = -1;  // the window in the buffer: group * bands + band
  for (int64_t item; (item = next++) < items;) {
    const int64_t share = item % splits, group_band = item / splits;
    const int64_t b0 = group_band / bands * kLanes, y0 = group_band % bands * tile.rows;
    const int64_t count = std::min(kLanes, p.batch - b0);
    if (group_band != packed) {
      pack_window(p, g, b0, count, y0, window.get());
      packed = group_band;
    }
    const int64_t end = share_start(p, share + 1, splits);
    for (int64_t o = share_start(p, share, splits); o < end;) {
      const int64_t same = use_3x3 ? std::min(run[o], end - o) : 1;
      int ot = 1;
      if (same >= 4 && tile.run4 != nullptr) {
        tile.run4(p, g, window.get(), o, band.get());
        ot = 4;
      } else if (same >= 2 && tile.run2 != nullptr) {
        tile.run2(p, g, window.get(), o, band.get());
        ot = 2;
      } else {
        band_fn(p, g, window.get(), o, band.get());
      }
      for (int u = 0; u < ot; ++u)
        batched_finish(p, g, band.get() + u * band_size, tile.rows, o + u, y0, b0, count);
      o += ot;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Planar: one image at a time, the padded plane flattened.

struct Planar {
  int64_t padded_w, plane, flat_len, chunks;
  std::vector<int64_t> tap_offset;  // floats from an output's input position to tap t's
};

// Output channel o's flat plane for one padded image: chunks of NV vectors, each summing every
// (kept slice, tap) into NV accumulators. TAPS = 9 is the 3x3 kernel with its tap loop unrolled
// (about 8% faster); TAPS = 0 takes the count at run time.
template <int NV, int TAPS>
void planar_row(const Problem& p, const Planar& g, const float* __restrict pad, int64_t o,
                float* __restrict flat) {
  constexpr int64_t chunk = kLanes * NV;
  const int64_t taps = TAPS > 0 ? TAPS : p.taps;
  const int64_t* __restrict off = g.tap_offset.data();
  for (int64_t q0 = 0; q0 < g.chunks * chunk; q0 += chunk) {
    Vec acc[NV];
    for (int v = 0; v < NV; ++v) acc[v] = Vec{};
    for (int64_t k = p.row_ptr[o]; k < p.row_ptr[o + 1]; ++k) {
      const float* src = pad + p.col[k] * g.plane + q0;
      const float* wk = p.w + k * taps;
#pragma GCC unroll 9
      for (int64_t t = 0; t < taps; ++t) {
        const float wt = wk[t];  // float * Vec broadcasts it
        for (int v = 0; v < NV; ++v) acc[v] += wt * load(src + off[t] + v * kLanes);
      }
    }
    for (int v = 0; v < NV; ++v) store(flat + q0 + v * kLanes, acc[v]);
  }
}

using PlanarFn = void (*)(const Problem&, const Planar&, const float*, int64_t, float*);

template <int TAPS>
PlanarFn pick_planar_taps(int nv) {
  switch (nv) {
    case 1: return planar_row<1, TAPS>;
    case 2: return planar_row<2, TAPS>;
    case 3: return planar_row<3, TAPS>;
    case 4: return planar_row<4, TAPS>;
    case 5: return planar_row<5, TAPS>;
    case 6: return planar_row<6, TAPS>;
    case 7: return planar_row<7, TAPS>;
    case 8: return planar_row<8, TAPS>;
    default: return nullptr;
  }
}

PlanarFn pick_planar(int nv, int64_t taps) {
  return taps == 9 ? pick_planar_taps<9>(nv) : pick_planar_taps<0>(nv);
}

void pad_image(const Problem& p, const Planar& g, int64_t b, float* pad) {
  for (int64_t c = 0; c < p.channels; ++c) {
    const float* src = p.x + (b * p.channels + c) * p.height * p.width;
    float* dst = pad + c * g.plane + p.pad_h * g.padded_w + p.pad_w;
    for (int64_t y = 0; y < p.height; ++y)
      std::memcpy(dst + y * g.padded_w, src + y * p.width, p.width * sizeof(float));
  }
}

// Work items, handed out one at a time through `next`: item i is image i / splits, for the
// (i % splits)-th output channel share. An image is padded again only when the thread moves to
// another one.
void planar_worker(const Problem& p, int nv, int64_t splits, int64_t items,
                   std::atomic<int64_t>& next) {
  const PlanarFn fn = pick_planar(nv, p.taps);
  Planar g;
  g.padded_w = std::max(p.out_width + p.tap_col.back(), p.width + p.pad_w);
  const int64_t padded_h = std::max(p.out_height + p.tap_row.back(), p.height + p.pad_h);
  g.plane = padded_h * g.padded_w;
  g.flat_len = p.out_height * g.padded_w;
  g.chunks = (g.flat_len + kLanes * nv - 1) / (kLanes * nv);
  for (int64_t t = 0; t < p.taps; ++t)
    g.tap_offset.push_back(p.tap_row[t] * g.padded_w + p.tap_col[t]);
  // The last chunk of the last plane reads up to a chunk past the plane's flat output range.
  Buffer pad(p.channels * g.plane + g.tap_offset.back() + kLanes * nv);
  Buffer flat(g.chunks * kLanes * nv);
  const int64_t hw = p.out_height * p.out_width;
  int64_t padded = -1;  // the image in the buffer
  for (int64_t item; (item = next++) < items;) {
    const int64_t b = item / splits, share = item % splits;
    if (b != padded) {
      pad_image(p, g, b, pad.get());
      padded = b;
    }
    for (int64_t o = share_start(p, share, splits); o < share_start(p, share + 1, splits); ++o) {
      fn(p, g, pad.get(), o, flat.get());
      const int64_t base = (b * p.out_channels + o) * hw;
      const float* res = flat.get();
      for (int64_t y = 0; y < p.out_height; ++y)
        for (int64_t c = 0; c < p.out_width; ++c) {
          const int64_t at = y * p.out_width + c;
          p.out[base + at] = finish(p, res[y * g.padded_w + c], o, base + at);
        }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Rows: one image at a time, 16 consecutive output columns of one row per vector; 3x3 kernels at
// dilation 1 only. The output rows go in bands; for a band, the input rows it reads (all
// channels) are copied into zero-padded planes whose rows are whole vectors (input column 0 at
// column pad_w, so the three horizontal taps of an output vector are loads at offsets 0, 1, 2:
// two cache lines per row when rows are 16 wide). Bands are as tall as fits in L1 (at least one
// tile; the whole plane when even that does not fit). A register tile of OT output channels
// (with identical kept input channels: a run, as block-structured masks give) x TR output rows x
// TC vectors sums, per kept slice, the TR + 2 input rows under it, each loaded once per
// horizontal tap (3 x TC loads) and used by the up to three output rows it reaches: 9 * TR * TC
// * OT multiply-adds per 3 * (TR + 2) * TC loads, and no transposes: the accumulators go straight
// to the output through the epilogue.
//
// Loop nest: image and band (work item) -> output channel or run (of this thread's share) ->
// tile of the band -> kept slice -> input row -> tap column -> vector -> output row -> channel.

struct Rows {
  int64_t stride;  // floats per padded row (a multiple of 16)
  int64_t band;    // output rows per band (a multiple of the tile's rows)
  int64_t bands;   // bands per image
  int64_t plane;   // floats per channel of a band's padded rows: (band + 2) * stride
  int64_t vecs;    // vectors per output row, rounded up to whole tiles
};

// The first line of each row of a slice's window, rows x tc vectors.
inline void prefetch_rows(const float* src, int64_t stride, int rows, int tc) {
  for (int r = 0; r < rows; ++r)
    for (int j = 0; j <= tc; j += 4) __builtin_prefetch(src + r * stride + j * kLanes);
}

// Epilogue and store of one output vector: row y, columns [c, c + 16) of plane (b, o) at flat
// index `base`; a vector past the plane's right edge is stored in part, one value at a time.
inline void store_row_vec(const Problem& p, Vec v, int64_t o, int64_t base, int64_t y,
                          int64_t c) {
  if (y >= p.out_height || c >= p.out_width) return;
  const int64_t at = base + y * p.out_width + c;
  if (c + kLanes <= p.out_width) {
    store(p.out + at, finish_vec(p, v, o, at));
  } else {
    for (int64_t i = 0; i < p.out_width - c; ++i) p.out[at + i] = finish(p, v[i], o, at + i);
  }
}

// Output channels [o, o + OT) (one run: identical kept input channels, so slice j of each is
// row_ptr[o + u] + j) of image `image`, output rows [y0, y0 + g.band) from the band's planes.
template <int OT, int TR, int TC>
void rows_3x3(const Problem& p, const Rows& g, const float* __restrict pad, int64_t o,
              int64_t image, int64_t y0) {
  const int64_t k0 = p.row_ptr[o], n = p.row_ptr[o + 1] - k0;
  const int64_t hw = p.out_height * p.out_width;
  for (int64_t dy = 0; dy < g.band && y0 + dy < p.out_height; dy += TR)
    for (int64_t x0 = 0; x0 < g.vecs; x0 += TC) {
      Vec acc[OT][TR][TC];
      for (int u = 0; u < OT; ++u)
        for (int r = 0; r < TR; ++r)
          for (int j = 0; j < TC; ++j) acc[u][r][j] = Vec{};
      const float* corner = pad + dy * g.stride + x0 * kLanes;
      for (int64_t j0 = 0; j0 < n; ++j0) {
        const float* src = corner + p.col[k0 + j0] * g.plane;
        if (j0 + 1 < n) prefetch_rows(corner + p.col[k0 + j0 + 1] * g.plane, g.stride, TR + 2, TC);
        float w[OT][9];
        for (int u = 0; u < OT; ++u)
          for (int t = 0; t < 9; ++t) w[u][t] = p.w[(p.row_ptr[o + u] + j0) * 9 + t];
#pragma GCC unroll 32
        for (int in_row = 0; in_row < TR + 2; ++in_row)
#pragma GCC unroll 4
          for (int kx = 0; kx < 3; ++kx)
#pragma GCC unroll 8
            for (int j = 0; j < TC; ++j) {
              const Vec v = load(src + in_row * g.stride + j * kLanes + kx);
#pragma GCC unroll 4
              for (int ky = 0; ky < 3; ++ky) {
                const int r = in_row - ky;  // the output row this input row feeds through ky
                if (r < 0 || r >= TR) continue;
#pragma GCC unroll 8
                for (int u = 0; u < OT; ++u) acc[u][r][j] += w[u][ky * 3 + kx] * v;
              }
            }
      }
      for (int u = 0; u < OT; ++u)
        for (int r = 0; r < TR; ++r)
          for (int j = 0; j < TC; ++j)
            store_row_vec(p, acc[u][r][j], o + u, (image * p.out_channels + o + u) * hw,
                          y0 + dy + r, (x0 + j) * kLanes);
    }
}

using RowsFn = void (*)(const Problem&, const Rows&, const float*, int64_t, int64_t, int64_t);

struct RowsTile {
  int rows, cols;
  RowsFn one, two, four;  // OT = 1, 2, 4 output channels of a run
};

#define TOPOPRUNE_ROWS_TILE(TR, TC, TR2, TR4) \
  {TR, TC, rows_3x3<1, TR, TC>, rows_3x3<2, TR2, TC>, rows_3x3<4, TR4, TC>}

// (rows, vectors) tiles for one output channel; two and four channels of a run take fewer rows
// (TR2, TR4 above, dividing TR), so that the accumulators stay in the 32 vector registers.
const RowsTile kRowsTiles[] = {
    TOPOPRUNE_ROWS_TILE(16, 1, 8, 4), TOPOPRUNE_ROWS_TILE(8, 1, 8, 4),
    TOPOPRUNE_ROWS_TILE(4, 1, 4, 2),  TOPOPRUNE_ROWS_TILE(8, 2, 4, 2),
    TOPOPRUNE_ROWS_TILE(4, 2, 4, 2),  TOPOPRUNE_ROWS_TILE(4, 4, 2, 1),
    TOPOPRUNE_ROWS_TILE(2, 4, 2, 1),  TOPOPRUNE_ROWS_TILE(2, 8, 1, 1),
};
#undef TOPOPRUNE_ROWS_TILE

// Bands' padded planes: as many tile rows per band as keep all channels' planes within
// kRowsL1 bytes (one tile row at least; a single band when one tile row does not fit either,
// the planes staying in L2 then).
constexpr int64_t kRowsL1 = 40 << 10;

Rows rows_geometry(const Problem& p, int tr, int tc) {
  Rows g;
  const int64_t vecs = (p.out_width + kLanes - 1) / kLanes;
  g.vecs = (vecs + tc - 1) / tc * tc;
  const int64_t width = std::max(g.vecs * kLanes + 2, p.pad_w + p.width);
  g.stride = (width + kLanes - 1) / kLanes * kLanes;
  const int64_t all = (p.out_height + tr - 1) / tr * tr;
  const int64_t row_bytes = p.channels * g.stride * int64_t(sizeof(float));
  int64_t band = tr;
  while (band + tr <= all && (band + tr + 2) * row_bytes <= kRowsL1) band += tr;
  if ((band + 2) * row_bytes > kRowsL1) band = all;
  g.band = band;
  g.bands = (p.out_height + band - 1) / band;
  g.plane = (band + 2) * g.stride;
  return g;
}

// Copies n floats (vectors, then a scalar tail).
inline void copy_floats(float* __restrict dst, const float* __restrict src, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) store(dst + i, load(src + i));
  for (; i < n; ++i) dst[i] = src[i];
}

// The padded rows of output rows [y0, y0 + band) of image b, all channels: every float of the
// planes is written (zero outside the input), so the scratch memory needs no clearing.
void rows_pad(const Problem& p, const Rows& g, int64_t b, int64_t y0, float* pad) {
  for (int64_t c = 0; c < p.channels; ++c) {
    const float* src = p.x + (b * p.channels + c) * p.height * p.width;
    float* plane = pad + c * g.plane;
    for (int64_t r = 0; r < g.band + 2; ++r) {
      float* dst = plane + r * g.stride;
      for (int64_t i = 0; i < g.stride; i += kLanes) store(dst + i, Vec{});
      const int64_t y = y0 + r - p.pad_h;
      if (y >= 0 && y < p.height) copy_floats(dst + p.pad_w, src + y * p.width, p.width);
    }
  }
}

// The length of the run of output channels from o on whose kept input channels are the same
// (same count, same order): run[o] >= 1.
std::vector<int64_t> support_runs(const Problem& p) {
  std::vector<int64_t> run(p.out_channels, 1);
  for (int64_t o = p.out_channels - 2; o >= 0; --o) {
    const int64_t n = p.row_ptr[o + 1] - p.row_ptr[o];
    if (n != p.row_ptr[o + 2] - p.row_ptr[o + 1]) continue;
    if (std::equal(p.col + p.row_ptr[o], p.col + p.row_ptr[o + 1], p.col + p.row_ptr[o + 1]))
      run[o] = run[o + 1] + 1;
  }
  return run;
}

// Work items, handed out through `next`: item i is band (i / splits) % bands of image
// i / (splits * bands), for the (i % splits)-th output channel share. Output channels of a run
// go four or two at a time where the run and the share allow. A band is padded again only when
// the thread moves to another one.
void rows_worker(const Problem& p, const RowsTile& tile, const Rows& g, int64_t splits,
                 int64_t items, const std::vector<int64_t>& run, std::atomic<int64_t>& next) {
  Scratch pad(p.channels * g.plane + kLanes);  // + prefetches past the last plane
  int64_t padded = -1;
  for (int64_t item; (item = next++) < items;) {
    const int64_t unit = item / splits, share = item % splits;
    const int64_t b = unit / g.bands, y0 = unit % g.bands * g.band;
    if (unit != padded) {
      rows_pad(p, g, b, y0, pad.get());
      padded = unit;
    }
    const int64_t end = share_start(p, share + 1, splits);
    for (int64_t o = share_start(p, share, splits); o < end;) {
      const int64_t same = std::min(run[o], end - o);
      if (same >= 4) {
        tile.four(p, g, pad.get(), o, b, y0);
        o += 4;
      } else if (same >= 2) {
        tile.two(p, g, pad.get(), o, b, y0);
        o += 2;
      } else {
        tile.one(p, g, pad.get(), o, b, y0);
        o += 1;
      }
    }
  }
}

const RowsTile* find_rows(int rows, int cols) {
  for (const auto& tile : kRowsTiles)
    if (tile.rows == rows && tile.cols == cols) return &tile;
  return nullptr;
}

// The rows tile with the least estimated work per plane: vectors computed (rows and vectors
// per row rounded up to whole tiles) plus the loads per (slice, tap) shared by the tile.
const RowsTile* pick_rows(int64_t out_h, int64_t out_w) {
  const RowsTile* best = nullptr;
  double best_cost = 0;
  const int64_t vecs = (out_w + kLanes - 1) / kLanes;
  for (const auto& tile : kRowsTiles) {
    const int64_t rows = (out_h + tile.rows - 1) / tile.rows * tile.rows;
    const int64_t cols = (vecs + tile.cols - 1) / tile.cols * tile.cols;
    const double loads = 3.0 * (tile.rows + 2) * tile.cols / (9.0 * tile.rows * tile.cols);
    const double cost = double(rows * cols) * (1.0 + loads);
    if (best == nullptr || cost < best_cost) best = &tile, best_cost = cost;
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// Tiny: planes of at most 16 values (4x4, 2x2): one vector holds a whole input plane of `per`
// images (16 / plane size of them), and every tap's view of it (the plane shifted by the tap,
// zero where it reaches the padding) is one two-source permute with a precomputed index
// (lanes that read padding take the zero vector's). Per kept slice: one aligned load, a permute
// and a multiply-add per tap, on L1-resident data; the views of a slice serve every output
// channel of a run (up to eight).

struct Tiny {
  int64_t per;              // images per vector
  int64_t in_plane, out_plane;  // values per input / output plane (<= 16)
  std::vector<IVec> index;  // per tap: lane -> lane of the plane vector (16: zero)
};

bool tiny_fits(const Problem& p) {
  return p.height * p.width <= kLanes && p.out_height * p.out_width <= kLanes;
}

Tiny tiny_geometry(const Problem& p) {
  Tiny g;
  g.in_plane = p.height * p.width;
  g.out_plane = p.out_height * p.out_width;
  g.per = kLanes / std::max(g.in_plane, g.out_plane);
  for (int64_t t = 0; t < p.taps; ++t) {
    IVec index;
    for (int64_t lane = 0; lane < kLanes; ++lane) {
      const int64_t i = lane / g.out_plane, q = lane % g.out_plane;
      const int64_t y = q / p.out_width + p.tap_row[t] - p.pad_h;
      const int64_t c = q % p.out_width + p.tap_col[t] - p.pad_w;
      const bool inside = i < g.per && y >= 0 && y < p.height && c >= 0 && c < p.width;
      index[lane] = int32_t(inside ? i * g.in_plane + y * p.width + c : kLanes);
    }
    g.index.push_back(index);
  }
  return g;
}

// Output channels [o, o + OT) of one run, images b0 .. b0 + count, from the packed planes
// (vector c: input channel c of the images).
template <int OT>
void tiny_channels(const Problem& p, const Tiny& g, const Vec* __restrict planes, int64_t o,
                   int64_t b0, int64_t count) {
  constexpr int kAcc = OT == 1 ? 4 : OT == 8 ? 1 : 2;  // per output channel, taps round-robin
  const int64_t taps = p.taps, k0 = p.row_ptr[o], n = p.row_ptr[o + 1] - k0;
  const IVec* __restrict index = g.index.data();
  Vec acc[OT][kAcc];
  for (int u = 0; u < OT; ++u)
    for (int a = 0; a < kAcc; ++a) acc[u][a] = Vec{};
  const Vec zero = Vec{};
  for (int64_t j = 0; j < n; ++j) {
    const Vec plane = planes[p.col[k0 + j]];
    const float* w[OT];
    for (int u = 0; u < OT; ++u) w[u] = p.w + (p.row_ptr[o + u] + j) * taps;
    if (taps == 9) {
#pragma GCC unroll 9
      for (int t = 0; t < 9; ++t) {
        const Vec view = __builtin_shuffle(plane, zero, index[t]);
        for (int u = 0; u < OT; ++u) acc[u][t % kAcc] += w[u][t] * view;
      }
    } else {
      for (int64_t t = 0; t < taps; ++t) {
        const Vec view = __builtin_shuffle(plane, zero, index[t]);
        for (int u = 0; u < OT; ++u) acc[u][t % kAcc] += w[u][t] * view;
      }
    }
  }
  const int64_t hw = g.out_plane;
  for (int u = 0; u < OT; ++u) {
    Vec sum = acc[u][0];
    for (int a = 1; a < kAcc; ++a) sum += acc[u][a];
    for (int64_t i = 0; i < count; ++i) {
      const int64_t at = ((b0 + i) * p.out_channels + o + u) * hw;
      if (hw == kLanes) {
        store(p.out + at, finish_vec(p, sum, o + u, at));
      } else {
        for (int64_t q = 0; q < hw; ++q)
          p.out[at + q] = finish(p, sum[i * hw + q], o + u, at + q);
      }
    }
  }
}

// Work items: image group i / splits (`per` images), output channel share i % splits.
void tiny_worker(const Problem& p, int64_t splits, int64_t items, const std::vector<int64_t>& run,
                 std::atomic<int64_t>& next) {
  const Tiny g = tiny_geometry(p);
  Buffer planes(p.channels * kLanes);
  Vec* packed = reinterpret_cast<Vec*>(planes.get());
  int64_t group = -1;
  for (int64_t item; (item = next++) < items;) {
    const int64_t b0 = item / splits * g.per, share = item % splits;
    const int64_t count = std::min(g.per, p.batch - b0);
    if (item / splits != group) {
      for (int64_t c = 0; c < p.channels; ++c) {
        float* dst = reinterpret_cast<float*>(packed + c);
        store(dst, Vec{});
        for (int64_t i = 0; i < count; ++i)
          std::memcpy(dst + i * g.in_plane, p.x + ((b0 + i) * p.channels + c) * g.in_plane,
                      g.in_plane * sizeof(float));
      }
      group = item / splits;
    }
    const int64_t end = share_start(p, share + 1, splits);
    for (int64_t o = share_start(p, share, splits); o < end;) {
      const int64_t same = std::min(run[o], end - o);
      if (same >= 8) {
        tiny_channels<8>(p, g, packed, o, b0, count);
        o += 8;
      } else if (same >= 4) {
        tiny_channels<4>(p, g, packed, o, b0, count);
        o += 4;
      } else if (same >= 2) {
        tiny_channels<2>(p, g, packed, o, b0, count);
        o += 2;
      } else {
        tiny_channels<1>(p, g, packed, o, b0, count);
        o += 1;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Flat: one image at a time, its planes flattened without padding (H * W values, whole vectors
// of 16 consecutive positions, rows running into each other), for "same" convolutions (output
// plane = input plane: padding = half the dilated kernel on both axes). Output position q reads
// input position q + s_t for tap t (s_t = dy * W + dx), so every tap's view of an output vector
// is the plane shifted by a constant: one two-source permute of the two vectors it straddles
// (none when s_t is a multiple of 16). What would wrap into the neighbouring row is zeroed in
// advance: each input channel is packed once per horizontal offset dx, with the columns a shift
// by dx would wrap (W + dx .. W - 1 for dx < 0, 0 .. dx - 1 for dx > 0) zeroed, and zero vectors
// around it for the rows above and below. A register tile of OT output channels of a run x NVT
// vectors shares each view among the OT channels: the permutes are paid once per run, so long
// runs (block masks) spend nearly all their time in multiply-adds, with every lane in use on
// 8x8 planes, where rows leaves half of them empty.

struct Flat {
  int64_t nv;       // vectors per plane
  int64_t margin;   // zero vectors before and after each packed plane
  int64_t sources;  // packed planes per channel (distinct horizontal offsets)
  int64_t stride;   // vectors per packed plane, margins included
  std::vector<int64_t> src;   // tap -> vector offset of its first straddled vector: packed plane
                              // source[t] * stride + margin + floor(s_t / 16)
  std::vector<IVec> index;    // tap -> lane + s_t mod 16 (over the two straddled vectors)
  std::vector<char> aligned;  // tap -> s_t mod 16 == 0 (the view is the vector itself)
  std::vector<int64_t> dx;    // packed plane -> its horizontal offset
};

bool flat_fits(const Problem& p) {
  return p.out_height == p.height && p.out_width == p.width && p.height * p.width > kLanes;
}

Flat flat_geometry(const Problem& p) {
  Flat g;
  g.nv = (p.height * p.width + kLanes - 1) / kLanes;
  int64_t reach = 0;
  std::vector<int64_t> shift(p.taps), source(p.taps);
  for (int64_t t = 0; t < p.taps; ++t) {
    const int64_t dy = p.tap_row[t] - p.pad_h, dx = p.tap_col[t] - p.pad_w;
    shift[t] = dy * p.width + dx;
    reach = std::max(reach, std::abs(shift[t]));
    const auto at = std::find(g.dx.begin(), g.dx.end(), dx);
    source[t] = at - g.dx.begin();
    if (at == g.dx.end()) g.dx.push_back(dx);
  }
  g.sources = int64_t(g.dx.size());
  g.margin = (reach + kLanes - 1) / kLanes + 1;
  g.stride = g.nv + 2 * g.margin;
  for (int64_t t = 0; t < p.taps; ++t) {
    const int64_t base = shift[t] >= 0 ? shift[t] / kLanes : -((-shift[t] + kLanes - 1) / kLanes);
    const int64_t rest = shift[t] - base * kLanes;  // 0 .. 15
    g.src.push_back(source[t] * g.stride + g.margin + base);
    IVec index;
    for (int64_t lane = 0; lane < kLanes; ++lane) index[lane] = int32_t(lane + rest);
    g.index.push_back(index);
    g.aligned.push_back(rest == 0);
  }
  return g;
}

// Image b's channels, each packed once per horizontal offset, zeros around (every float of the
// packed planes is written: the scratch memory needs no clearing).
void flat_pack(const Problem& p, const Flat& g, int64_t b, Vec* packed) {
  const int64_t hw = p.height * p.width;
  for (int64_t c = 0; c < p.channels; ++c) {
    const float* src = p.x + (b * p.channels + c) * hw;
    for (int64_t s = 0; s < g.sources; ++s) {
      Vec* plane = packed + (c * g.sources + s) * g.stride;
      for (int64_t v = 0; v < g.stride; ++v) plane[v] = Vec{};
      float* data = reinterpret_cast<float*>(plane + g.margin);
      copy_floats(data, src, hw);
      const int64_t dx = g.dx[s];
      const int64_t first = dx < 0 ? std::max<int64_t>(0, p.width + dx) : 0;
      const int64_t last = dx < 0 ? p.width : std::min<int64_t>(p.width, dx);
      if (first < last)
        for (int64_t y = 0; y < p.height; ++y)
          for (int64_t x = first; x < last; ++x) data[y * p.width + x] = 0.0f;
    }
  }
}

// Output channels [o, o + OT) of one run, output vectors [v0, v0 + NVT) of image `image`.
template <int OT, int NVT>
void flat_tile(const Problem& p, const Flat& g, const Vec* __restrict packed, int64_t o,
               int64_t image, int64_t v0) {
  const int64_t taps = p.taps, k0 = p.row_ptr[o], n = p.row_ptr[o + 1] - k0;
  const int64_t per_channel = g.sources * g.stride;
  Vec acc[OT][NVT];
  for (int u = 0; u < OT; ++u)
    for (int v = 0; v < NVT; ++v) acc[u][v] = Vec{};
  for (int64_t j = 0; j < n; ++j) {
    const Vec* channel = packed + p.col[k0 + j] * per_channel + v0;
    const float* w[OT];
    for (int u = 0; u < OT; ++u) w[u] = p.w + (p.row_ptr[o + u] + j) * taps;
#pragma GCC unroll 9
    for (int64_t t = 0; t < taps; ++t) {
      const Vec* s = channel + g.src[t];
      if (g.aligned[t]) {
        for (int v = 0; v < NVT; ++v)
          for (int u = 0; u < OT; ++u) acc[u][v] += w[u][t] * s[v];
      } else {
        const IVec index = g.index[t];
        for (int v = 0; v < NVT; ++v) {
          const Vec view = __builtin_shuffle(s[v], s[v + 1], index);
          for (int u = 0; u < OT; ++u) acc[u][v] += w[u][t] * view;
        }
      }
    }
  }
  const int64_t hw = p.out_height * p.out_width;
  for (int u = 0; u < OT; ++u) {
    const int64_t base = (image * p.out_channels + o + u) * hw;
    for (int v = 0; v < NVT; ++v) {
      const int64_t q = (v0 + v) * kLanes;
      if (q + kLanes <= hw) {
        store(p.out + base + q, finish_vec(p, acc[u][v], o + u, base + q));
      } else {
        for (int64_t i = 0; q + i < hw; ++i)
          p.out[base + q + i] = finish(p, acc[u][v][i], o + u, base + q + i);
      }
    }
  }
}

// Output channels [o, o + OT) of one run over the whole plane: tiles of kWide vectors (8, 6, 4, 2
// for 1, 2, 4, 8 channels: at most 16 accumulators), then of 2 and 1 for the rest.
template <int OT>
void flat_channels(const Problem& p, const Flat& g, const Vec* packed, int64_t o,
                   int64_t image) {
  constexpr int kWide = OT == 8 ? 2 : OT == 4 ? 4 : OT == 2 ? 6 : 8;  // OT * kWide <= 16
  int64_t v0 = 0;
  for (; v0 + kWide <= g.nv; v0 += kWide) flat_tile<OT, kWide>(p, g, packed, o, image, v0);
  for (; v0 + 2 <= g.nv; v0 += 2) flat_tile<OT, 2>(p, g, packed, o, image, v0);
  for (; v0 < g.nv; ++v0) flat_tile<OT, 1>(p, g, packed, o, image, v0);
}

// Work items as in planar_worker: image i / splits, output channel share i % splits.
void flat_worker(const Problem& p, const Flat& g, int64_t splits, int64_t items,
                 const std::vector<int64_t>& run, std::atomic<int64_t>& next) {
  Scratch scratch(p.channels * g.sources * g.stride * kLanes);
  Vec* packed = reinterpret_cast<Vec*>(scratch.get());
  int64_t packed_image = -1;
  for (int64_t item; (item = next++) < items;) {
    const int64_t b = item / splits, share = item % splits;
    if (b != packed_image) {
      flat_pack(p, g, b, packed);
      packed_image = b;
    }
    const int64_t end = share_start(p, share + 1, splits);
    for (int64_t o = share_start(p, share, splits); o < end;) {
      const int64_t same = std::min(run[o], end - o);
      if (same >= 8) {
        flat_channels<8>(p, g, packed, o, b);
        o += 8;
      } else if (same >= 4) {
        flat_channels<4>(p, g, packed, o, b);
        o += 4;
      } else if (same >= 2) {
        flat_channels<2>(p, g, packed, o, b);
        o += 2;
      } else {
        flat_channels<1>(p, g, packed, o, b);
        o += 1;
      }
    }
  }
}

// Multiply-adds below which another thread is not worth starting (tens of microseconds).
constexpr int64_t kWorkPerThread = int64_t(1) << 21;

// Runs body() on `used` threads (this one included). Returns 0, or 2 when a thread could not be
// started or a body threw (a buffer it could not allocate).
template <class Body>
int run_on_threads(int64_t used, Body body) {
  std::atomic<int> status{0};
  auto run = [&]() {
    try {
      body();
    } catch (...) {
      status = 2;
    }
  };
  std::vector<std::thread> pool;
  try {
    for (int64_t t = 1; t < used; ++t) pool.emplace_back(run);
  } catch (...) {
    status = 2;
  }
  run();
  for (auto& th : pool) th.join();
  return status;
}

// Runs worker(splits, items, next) on up to `threads` threads (this one included; fewer for
// small work), sharing the item counter `next` so that a thread that falls behind (other load on
// its core) simply takes fewer items. Output channels are cut into `splits` shares per unit
// (image group and band, or image), enough for about four items per thread.
template <class Worker>
int parallel(int64_t units, int64_t threads, const Problem& p, Worker worker) {
  const int64_t work = p.row_ptr[p.out_channels] * p.taps * p.out_height * p.out_width * p.batch;
  threads = std::max<int64_t>(1, std::min(threads, work / kWorkPerThread));
  const int64_t splits =
      std::max<int64_t>(1, std::min(p.out_channels, (4 * threads + units - 1) / units));
  const int64_t items = units * splits;
  const int64_t used = std::max<int64_t>(1, std::min(threads, items));
  std::atomic<int64_t> next{0};
  return run_on_threads(used, [&]() { worker(splits, items, next); });
}

// The form `auto` takes: the one whose lane use (the fraction of vector lanes that compute kept
// outputs) times a weight for how fast its loop runs per lane is highest. The weights, measured
// on 3x3 kernels over 2x2 to 32x32 planes relative to planar's 1: batched 1.8 (aligned loads,
// each input vector reused for its taps, but transposes in and out), 2.0 where its packed
// window is small (few channels: it stays in L2 with room to spare), 1.5 where it is large;
// rows 1.85 (the same reuse, two of three loads unaligned, no transposes; 3x3 kernels at
// dilation 1); flat 1.35 with runs of output channels of 3 or more on average (block masks),
// less with shorter runs (its permutes are shared by a run). Tiny (planes of up to 16 values)
// whenever a vector holds two or more images' planes (2x2: it beats batched even at full groups
// of 16), and below 16 images on 3x3 and 4x4 planes. So batch 1 takes rows on 16x16 and 32x32,
// flat on 8x8 planes of block masks (rows on random ones), tiny on 4x4 and 2x2; whole groups of
// 16 images take batched when they have few channels, rows when they have many.
int auto_mode(const Problem& p, int64_t batch, const std::vector<int64_t>& run) {
  if (tiny_fits(p)) {
    const int64_t per = kLanes / std::max(p.height * p.width, p.out_height * p.out_width);
    if (per >= 2 || batch < kLanes) return 5;
  }
  const int64_t padded_w = std::max(p.out_width + p.tap_col.back(), p.width + p.pad_w);
  const int64_t flat = p.out_height * padded_w;
  const double planar = double(p.out_height * p.out_width) /
                        double((flat + kLanes - 1) / kLanes * kLanes);
  const int64_t groups = (batch + kLanes - 1) / kLanes;
  const bool is_3x3 = p.taps == 9 && p.tap_row.back() == 2 && p.tap_col.back() == 2;
  const BatchedTile* tile =
      pick_batched(p.out_height, p.out_width, p.tap_row.back(), p.tap_col.back(), is_3x3);
  const int64_t cols = (p.out_width + tile->cols - 1) / tile->cols * tile->cols;
  const double window = double(p.channels * (tile->rows + p.tap_row.back()) *
                               (cols + p.tap_col.back()) * kLanes * sizeof(float));
  const double batched_weight = window <= (256 << 10) ? 2.0 : window <= (512 << 10) ? 1.8 : 1.5;
  const double batched = batched_weight * double(batch) / double(groups * kLanes);
  const int64_t vecs = (p.out_width + kLanes - 1) / kLanes;
  const double rows = is_3x3 ? 1.85 * double(p.out_width) / double(vecs * kLanes) : 0.0;
  int64_t starts = 0;
  for (int64_t o = 0; o < p.out_channels; o += run[o]) ++starts;
  const double mean_run = double(p.out_channels) / double(std::max<int64_t>(1, starts));
  const int64_t hw = p.height * p.width;
  const double flat_use = double(hw) / double((hw + kLanes - 1) / kLanes * kLanes);
  const double flat_mode =
      flat_fits(p) ? (mean_run >= 3 ? 1.35 : mean_run >= 2 ? 0.95 : 0.7) * flat_use : 0.0;
  const double best = std::max({planar, batched, rows, flat_mode});
  if (rows == best) return 4;
  if (flat_mode == best) return 6;
  return batched == best ? 2 : 1;
}

}  // namespace

// x (batch, channels, height, width); w (nnz, kernel_h, kernel_w) with row_ptr (out_channels + 1)
// and col (nnz) as described at the top; bias (out_channels) and residual (batch, out_channels,
// Ho, Wo) may be null; lo, hi: the clamp applied last. out (batch, out_channels, Ho, Wo).
// mode: 0 = choose; 1 = planar (tile_cols = vectors per chunk, 1..8, 0 = choose); 2 = batched
// (tile_rows x tile_cols register tile, one of kBatchedTiles, 0 x 0 = choose; 3x3 kernels at
// dilation 1 take the 3x3 form); 3 = batched, general form only; 4 = rows (tile_rows x
// tile_cols: output rows x vectors, one of kRowsTiles, 0 x 0 = choose; 3x3 kernels at dilation
// 1 only); 5 = tiny (input and output planes of at most 16 values); 6 = flat (output plane =
// input plane, more than 16 values). Returns 0 on success, 1 for an unknown mode or tile, a
// shape the mode cannot compute (or an empty output plane), 2 when a thread or buffer could not
// be created.
extern "C" int topoprune_slice_conv2d(const float* x, int64_t batch, int64_t channels,
                                      int64_t height, int64_t width, const float* w,
                                      const int64_t* row_ptr, const int64_t* col,
                                      int64_t out_channels, int64_t kernel_h, int64_t kernel_w,
                                      const float* bias, const float* residual, float lo,
                                      float hi, float* out, int64_t pad_h, int64_t pad_w,
                                      int64_t dil_h, int64_t dil_w, int mode, int tile_rows,
                                      int tile_cols, int threads) {
  Problem p;
  p.x = x, p.batch = batch, p.channels = channels, p.height = height, p.width = width;
  p.w = w, p.row_ptr = row_ptr, p.col = col, p.out_channels = out_channels;
  p.taps = kernel_h * kernel_w;
  p.bias = bias, p.residual = residual, p.out = out;
  p.lo = lo, p.hi = hi, p.clamped = lo > -INFINITY || hi < INFINITY;
  p.out_height = height + 2 * pad_h - dil_h * (kernel_h - 1);
  p.out_width = width + 2 * pad_w - dil_w * (kernel_w - 1);
  p.pad_h = pad_h, p.pad_w = pad_w;
  for (int64_t a = 0; a < kernel_h; ++a)
    for (int64_t c = 0; c < kernel_w; ++c) {
      p.tap_row.push_back(a * dil_h);
      p.tap_col.push_back(c * dil_w);
    }
  if (p.out_height < 1 || p.out_width < 1) return 1;
  const int64_t workers = std::max(1, threads);

  const std::vector<int64_t> run = support_runs(p);
  if (mode == 0) {
    mode = auto_mode(p, batch, run);
    tile_rows = tile_cols = 0;
  }
  if (batch == 0) return (mode >= 1 && mode <= 6) ? 0 : 1;

  if (mode == 2 || mode == 3) {
    const bool is_3x3 = mode == 2 && kernel_h == 3 && kernel_w == 3 && dil_h == 1 && dil_w == 1;
    const BatchedTile* tile =
        (tile_rows == 0 && tile_cols == 0)
            ? pick_batched(p.out_height, p.out_width, p.tap_row.back(), p.tap_col.back(), is_3x3)
            : find_batched(tile_rows, tile_cols);
    if (tile == nullptr) return 1;
    const bool use_3x3 = is_3x3 && tile->fast_3x3 != nullptr;
    const int64_t groups = (batch + kLanes - 1) / kLanes;
    const int64_t bands = (p.out_height + tile->rows - 1) / tile->rows;
    return parallel(groups * bands, workers, p, [&](int64_t splits, int64_t items,
                                                    std::atomic<int64_t>& next) {
      batched_worker(p, *tile, use_3x3, splits, items, run, next);
    });
  }
  if (mode == 4) {
    const RowsTile* tile = (tile_rows == 0 && tile_cols == 0)
                               ? pick_rows(p.out_height, p.out_width)
                               : find_rows(tile_rows, tile_cols);
    if (tile == nullptr || kernel_h != 3 || kernel_w != 3 || dil_h != 1 || dil_w != 1) return 1;
    const Rows g = rows_geometry(p, tile->rows, tile->cols);
    return parallel(batch * g.bands, workers, p, [&](int64_t splits, int64_t items,
                                                     std::atomic<int64_t>& next) {
      rows_worker(p, *tile, g, splits, items, run, next);
    });
  }
  if (mode == 6) {
    if (!flat_fits(p)) return 1;
    const Flat g = flat_geometry(p);
    return parallel(batch, workers, p, [&](int64_t splits, int64_t items,
                                           std::atomic<int64_t>& next) {
      flat_worker(p, g, splits, items, run, next);
    });
  }
  if (mode == 5) {
    if (!tiny_fits(p)) return 1;
    const int64_t per = kLanes / std::max(height * width, p.out_height * p.out_width);
    return parallel((batch + per - 1) / per, workers, p,
                    [&](int64_t splits, int64_t items, std::atomic<int64_t>& next) {
                      tiny_worker(p, splits, items, run, next);
                    });
  }
  if (mode == 1) {
    int nv = tile_cols;
    if (nv == 0) {  // the fewest chunks of up to 8 vectors, as even as possible
      const int64_t padded_w = std::max(p.out_width + p.tap_col.back(), width + pad_w);
      const int64_t vectors = (p.out_height * padded_w + kLanes - 1) / kLanes;
      const int64_t chunks = (vectors + 7) / 8;
      nv = int((vectors + chunks - 1) / chunks);
    }
    if (pick_planar(nv, p.taps) == nullptr) return 1;
    return parallel(batch, workers, p, [&](int64_t splits, int64_t items,
                                           std::atomic<int64_t>& next) {
      planar_worker(p, nv, splits, items, next);
    });
  }
  return 1;
}

// ---------------------------------------------------------------------------------------------
// Sparse linear layer, the same CSR layout over single weights:
//   out[b, o] = clamp(bias[o] + sum_k w[k] * x[b, col[k]], lo, hi), k over row o of the CSR.
// From 4 rows on, 16 rows share a vector: the group's inputs are transposed into xt[in][16], each
// kept weight is one multiply-add of a broadcast weight and one aligned vector (four partial sums
// per output hide the add latency), and 16 outputs at a time are transposed back. Fewer rows go
// one at a time with scalar gathers. Single-threaded unless the product is large: LeNet-sized
// layers take microseconds, less than waking a thread.

namespace {

struct Linear {
  const float* x;
  int64_t batch, in_features;
  const float* w;
  const int64_t* row_ptr;
  const int64_t* col;
  int64_t out_features;
  const float* bias;
  float lo, hi;
  float* out;
};

inline float clamp_value(const Linear& p, float value) {
  return std::min(std::max(value, p.lo), p.hi);  // NaN stays NaN
}

// Rows [b0, b0 + count), count <= 16: pack, multiply-add, transpose back.
void linear_group(const Linear& p, int64_t b0, int64_t count, float* xt) {
  const int64_t n = p.in_features;
  int64_t i0 = 0;
  for (; i0 + kLanes <= n; i0 += kLanes) {
    Vec v[kLanes];
    for (int64_t r = 0; r < kLanes; ++r) v[r] = r < count ? load(p.x + (b0 + r) * n + i0) : Vec{};
    transpose16(v);  // v[j]: input i0 + j of the 16 rows
    for (int64_t j = 0; j < kLanes; ++j) store(xt + (i0 + j) * kLanes, v[j]);
  }
  for (; i0 < n; ++i0)
    for (int64_t r = 0; r < count; ++r) xt[i0 * kLanes + r] = p.x[(b0 + r) * n + i0];
  for (int64_t o0 = 0; o0 < p.out_features; o0 += kLanes) {
    const int64_t outs = std::min(kLanes, p.out_features - o0);
    Vec acc[kLanes];
    for (int64_t j = 0; j < kLanes; ++j) {
      acc[j] = Vec{};
      if (j >= outs) continue;
      const int64_t o = o0 + j;
      Vec part[4] = {Vec{}, Vec{}, Vec{}, Vec{}};
      int64_t k = p.row_ptr[o];
      for (; k + 4 <= p.row_ptr[o + 1]; k += 4)
        for (int u = 0; u < 4; ++u)
          part[u] += p.w[k + u] * *reinterpret_cast<const Vec*>(xt + p.col[k + u] * kLanes);
      for (; k < p.row_ptr[o + 1]; ++k)
        part[0] += p.w[k] * *reinterpret_cast<const Vec*>(xt + p.col[k] * kLanes);
      acc[j] = (part[0] + part[1]) + (part[2] + part[3]);
      if (p.bias) acc[j] += p.bias[o];
    }
    transpose16(acc);  // acc[r]: outputs o0 .. o0 + 15 of row b0 + r
    for (int64_t r = 0; r < count; ++r) {
      float* dst = p.out + (b0 + r) * p.out_features + o0;
      for (int64_t j = 0; j < outs; ++j) dst[j] = clamp_value(p, acc[r][j]);
    }
  }
}

// One row b, one output at a time (four partial sums).
void linear_row(const Linear& p, int64_t b) {
  const float* xb = p.x + b * p.in_features;
  for (int64_t o = 0; o < p.out_features; ++o) {
    float part[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    int64_t k = p.row_ptr[o];
    for (; k + 4 <= p.row_ptr[o + 1]; k += 4)
      for (int u = 0; u < 4; ++u) part[u] += p.w[k + u] * xb[p.col[k + u]];
    for (; k < p.row_ptr[o + 1]; ++k) part[0] += p.w[k] * xb[p.col[k]];
    const float value = (part[0] + part[1]) + (part[2] + part[3]) + (p.bias ? p.bias[o] : 0.0f);
    p.out[b * p.out_features + o] = clamp_value(p, value);
  }
}

}  // namespace

// x (batch, in_features); w (nnz) with row_ptr (out_features + 1) and col (nnz); bias
// (out_features) or null; out (batch, out_features). Returns 0, or 2 when a thread or buffer
// could not be created.
extern "C" int topoprune_sparse_linear(const float* x, int64_t batch, int64_t in_features,
                                       const float* w, const int64_t* row_ptr,
                                       const int64_t* col, int64_t out_features,
                                       const float* bias, float lo, float hi, float* out,
                                       int threads) {
  const Linear p{x, batch, in_features, w, row_ptr, col, out_features, bias, lo, hi, out};
  const bool grouped = batch >= 4;
  const int64_t units = grouped ? (batch + kLanes - 1) / kLanes : batch;
  // A thread is worth waking from about 4M multiply-adds on.
  const int64_t work = row_ptr[out_features] * batch;
  const int64_t used = std::max<int64_t>(
      1, std::min<int64_t>({int64_t(threads), units, work / (int64_t(1) << 22)}));
  std::atomic<int64_t> next{0};
  return run_on_threads(used, [&]() {
    Buffer xt(grouped ? in_features * kLanes : 0);
    for (int64_t unit; (unit = next++) < units;) {
      if (grouped)
        linear_group(p, unit * kLanes, std::min(kLanes, batch - unit * kLanes), xt.get());
      else
        linear_row(p, unit);
    }
  });
}
