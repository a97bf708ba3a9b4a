// Native swap search for topoprune.graphs.swap: simulated annealing (or greedy descent) on the
// total distance of a connected k-regular graph, by degree-preserving double-edge swaps.
//
// Plain C++ with no Python headers, loaded through ctypes. Every candidate gets an exact
// all-sources bitset BFS (one uint64 word per 64 nodes), stopped as soon as a lower bound on its
// distance sum passes the value the acceptance test allows.

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <ctime>
#include <vector>

namespace {

constexpr int64_t CLOCK_WORK = 1 << 16;

struct Rng {  // xoshiro256**
    uint64_t s[4];

    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

    uint64_t next() {
        const uint64_t result = rotl(s[1] * 5, 7) * 9;
        const uint64_t t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 45);
        return result;
    }

    int64_t below(int64_t bound) {  // uniform in [0, bound)
        return (int64_t)(((unsigned __int128)next() * (uint64_t)bound) >> 64);
    }

    double unit() { return (double)(next() >> 11) * 0x1.0p-53; }  // uniform in [0, 1)
};

double now_seconds() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// A k-regular graph, optionally invariant under the rotation v -> v + m (mod n): g = n / m
// copies of every edge. Distances are then counted from the m sources 0..m-1 only and scaled
// by g, and every swap is applied to all g rotated copies at once, so the graph stays invariant.
struct Graph {
    int64_t n, k, m, g, words;
    int32_t *nbr;                 // (n, k) neighbour table, updated in place
    std::vector<uint64_t> adj;    // (n, n / 64 rounded up) adjacency bitsets
    std::vector<uint64_t> reach;  // (n, words): per node, the sources within the current level
    std::vector<uint64_t> next;   // (n, words) scratch for the next level
    std::vector<uint64_t> far;    // (n, words): see mark_far
    int64_t adj_words;

    Graph(int64_t n_, int64_t k_, int64_t m_, int32_t *nbr_)
        : n(n_), k(k_), m(m_), g(n_ / m_), words((m_ + 63) / 64), nbr(nbr_),
          reach(n_ * words), next(n_ * words), adj_words((n_ + 63) / 64) {
        adj.assign(n * adj_words, 0);
        for (int64_t v = 0; v < n; ++v)
            for (int64_t j = 0; j < k; ++j) flip(v, nbr[v * k + j]);
    }

    void flip(int64_t u, int64_t v) { adj[u * adj_words + (v >> 6)] ^= 1ULL << (v & 63); }

    bool linked(int64_t u, int64_t v) const {
        return (adj[u * adj_words + (v >> 6)] >> (v & 63)) & 1ULL;
    }

    int64_t slot(int64_t u, int64_t v) const {  // position of v in u's row
        for (int64_t j = 0; j < k; ++j)
            if (nbr[u * k + j] == v) return j;
        return -1;
    }

    // Replace edges (a, b), (c, d) by (a, c), (b, d); undone by rewire(a, c, b, d).
    void rewire(int64_t a, int64_t b, int64_t c, int64_t d) {
        nbr[a * k + slot(a, b)] = (int32_t)c;
        nbr[b * k + slot(b, a)] = (int32_t)d;
        nbr[c * k + slot(c, d)] = (int32_t)a;
        nbr[d * k + slot(d, c)] = (int32_t)b;
        flip(a, b), flip(b, a), flip(c, d), flip(d, c);
        flip(a, c), flip(c, a), flip(b, d), flip(d, b);
    }

    int64_t shifted(int64_t v, int64_t copy) const { return (v + copy * m) % n; }

    // How many distinct rotated copies the swap (a, b), (c, d) -> (a, c), (b, d) has: g / 2 when
    // both edges join nodes half a turn apart (copy i + g/2 is then copy i again), else g.
    int64_t copies(int64_t a, int64_t b, int64_t c, int64_t d) const {
        if (g % 2 != 0) return g;
        const int64_t half = g / 2;
        const bool repeats = shifted(a, half) == b && shifted(b, half) == a &&
                             shifted(c, half) == d && shifted(d, half) == c;
        return repeats ? half : g;
    }

    // The swap (a, b), (c, d) -> (a, c), (b, d) in all its rotated copies, one after another;
    // if any copy is not a valid swap at its turn (an edge missing, a loop or a repeated edge
    // made), the copies done are undone and false is returned.
    bool swap_all(int64_t a, int64_t b, int64_t c, int64_t d) {
        const int64_t count = copies(a, b, c, d);
        for (int64_t i = 0; i < count; ++i) {
            const int64_t A = shifted(a, i), B = shifted(b, i), C = shifted(c, i),
                          D = shifted(d, i);
            if (A == C || A == D || B == C || B == D || !linked(A, B) || !linked(C, D) ||
                linked(A, C) || linked(B, D)) {
                unswap_all(a, b, c, d, i);
                return false;
            }
            rewire(A, B, C, D);
        }
        return true;
    }

    // Undo the first `done` rotated copies of swap_all(a, b, c, d), last first.
    void unswap_all(int64_t a, int64_t b, int64_t c, int64_t d, int64_t done) {
        for (int64_t i = done - 1; i >= 0; --i)
            rewire(shifted(a, i), shifted(c, i), shifted(b, i), shifted(d, i));
    }

    // Sum of distances over ordered node pairs, or -1 once it provably exceeds `limit`, or -2 if
    // the graph is disconnected. `diameter` is set when the exact sum is returned. With
    // `stop_level`, the search stops there (returning -1) and leaves in `reach` the sources
    // within that distance of each node.
    int64_t total_distance(double limit, int64_t *diameter, int64_t stop_level = INT64_MAX) {
        const int64_t all = n * m;  // (node, source) pairs, each node paired with itself too
        std::fill(reach.begin(), reach.end(), 0);
        for (int64_t v = 0; v < n; ++v) {
            uint64_t *row = &reach[v * words];
            if (v < m) row[v >> 6] |= 1ULL << (v & 63);
            for (int64_t j = 0; j < k; ++j) {
                const int64_t u = nbr[v * k + j];
                if (u < m) row[u >> 6] |= 1ULL << (u & 63);
            }
        }
        int64_t reached = m + m * k, total = m * k, level = 1;
        while (reached < all) {
            if (level == stop_level) return -1;
            ++level;
            int64_t count = 0;
            for (int64_t v = 0; v < n; ++v) {
                uint64_t *out = &next[v * words];
                std::memcpy(out, &reach[v * words], words * sizeof(uint64_t));
                for (int64_t j = 0; j < k; ++j) {
                    const uint64_t *in = &reach[(int64_t)nbr[v * k + j] * words];
                    for (int64_t w = 0; w < words; ++w) out[w] |= in[w];
                }
                for (int64_t w = 0; w < words; ++w) count += __builtin_popcountll(out[w]);
            }
            if (count == reached) return -2;
            total += level * (count - reached);
            reached = count;
            if ((double)(g * (total + (level + 1) * (all - reached))) > limit) return -1;
            reach.swap(next);
        }
        *diameter = level;
        return g * total;
    }

    // Keep in `far` the sources within distance diameter - 1 of each node: the pairs outside
    // are the farthest apart, which targeted swaps bring closer.
    void mark_far(int64_t diameter) {
        int64_t unused = 0;
        total_distance(1e300, &unused, diameter - 1);
        far = reach;
    }

    // A swap (a, b), (c, d) -> (a, c), (b, d) that brings a farthest pair within distance 2:
    // a is a source at distance `diameter` from some node v, c a neighbour of v. False if the
    // node drawn has no such source.
    bool draw_targeted(Rng &rng, int64_t *a, int64_t *b, int64_t *c, int64_t *d) const {
        const int64_t v = rng.below(n);
        const uint64_t *row = &far[v * words];
        int64_t missing = 0;
        for (int64_t w = 0; w < words; ++w) missing += __builtin_popcountll(~row[w]);
        missing -= words * 64 - m;  // bits past the last source are never set
        if (missing == 0) return false;
        int64_t pick = rng.below(missing), u = 0;
        for (;; ++u) {
            if (((row[u >> 6] >> (u & 63)) & 1ULL) == 0 && pick-- == 0) break;
        }
        *a = u;
        *b = nbr[*a * k + rng.below(k)];
        *c = nbr[v * k + rng.below(k)];
        *d = nbr[*c * k + rng.below(k)];
        return true;
    }
};

}  // namespace

// Try up to `steps` swaps on the graph `nbr` (n, k), for at most `seconds` (<= 0: no limit).
// With m < n (m dividing n) the graph must be invariant under v -> v + m (mod n) and stays so.
// A swap whose distance sum changes by delta is kept with probability min(1, exp(-delta / T)),
// T falling geometrically from temp_start to temp_end over the call (by steps or seconds,
// whichever runs out first) when both are > 0; otherwise a swap is kept when the sum does not
// rise. A fraction `targeted` of the swaps drawn is aimed at a farthest pair (see
// draw_targeted), the rest are uniform. The call always tries at least one swap. `state` (4
// words) is the random state, carried between calls. `stats` holds, in and out: [0] current distance sum,
// [1] current diameter, [2] best sum, [3] best diameter; out: [4] swaps tried, [5] swaps kept.
// `best` (n, k) receives each new best graph (lowest sum, then lowest diameter). Each new best
// is also written as a row (step, sum, diameter) of `trajectory` (capacity rows); the call
// returns early when it is full. `*rows` is the number written. Returns 0.
extern "C" int topoprune_anneal(int64_t n, int64_t k, int64_t m, int32_t *nbr, uint64_t *state,
                                int64_t steps, double seconds, double temp_start,
                                double temp_end, double targeted, int32_t *best,
                                int64_t *stats, int64_t *trajectory, int64_t capacity,
                                int64_t *rows) {
    Graph graph(n, k, m, nbr);
    Rng rng;
    std::memcpy(rng.s, state, sizeof(rng.s));
    const double started = now_seconds();
    const bool cooling = temp_start > 0.0 && temp_end > 0.0;
    const double ratio = cooling ? temp_end / temp_start : 1.0;
    int64_t current = stats[0], current_diameter = stats[1];
    int64_t best_total = stats[2], best_diameter = stats[3];
    int64_t tried = 0, kept = 0, work = 0;
    const int64_t bfs_work = n * k * graph.words;  // word operations of one BFS level
    double temperature = cooling ? temp_start : 0.0;
    *rows = 0;
    if (targeted > 0.0 && current_diameter >= 3) graph.mark_far(current_diameter);
    while (tried < steps && *rows < capacity) {
        // The clock (and the temperature) is updated before the first swap and then after about
        // CLOCK_WORK word operations, so a call makes progress and stops close to its time even
        // when one BFS is long, without reading the clock around every cheap swap.
        if (tried == 0 || work >= CLOCK_WORK) {
            work = 0;
            const double elapsed = seconds > 0.0 ? now_seconds() - started : 0.0;
            if (tried > 0 && seconds > 0.0 && elapsed >= seconds) break;
            if (cooling) {
                double fraction = (double)tried / (double)steps;
                if (seconds > 0.0 && elapsed / seconds > fraction) fraction = elapsed / seconds;
                temperature = temp_start * std::pow(ratio, fraction);
            }
        }
        ++tried, ++work;
        int64_t a, b, c, d;
        const bool aimed = targeted > 0.0 && current_diameter >= 3 && rng.unit() < targeted &&
                           graph.draw_targeted(rng, &a, &b, &c, &d);
        if (!aimed) {
            a = rng.below(n), c = rng.below(n);
            b = nbr[a * k + rng.below(k)], d = nbr[c * k + rng.below(k)];
        }
        if (!graph.swap_all(a, b, c, d)) continue;
        work += bfs_work;
        const double limit =
            (double)current - (temperature > 0.0 ? temperature * std::log1p(-rng.unit()) : 0.0);
        int64_t diameter = 0;
        const int64_t total = graph.total_distance(limit, &diameter);
        if (total < 0) {
            graph.unswap_all(a, b, c, d, graph.copies(a, b, c, d));
            continue;
        }
        ++kept;
        current = total, current_diameter = diameter;
        if (targeted > 0.0 && diameter >= 3) graph.mark_far(diameter);
        if (total < best_total || (total == best_total && diameter < best_diameter)) {
            best_total = total, best_diameter = diameter;
            std::memcpy(best, nbr, n * k * sizeof(int32_t));
            int64_t *row = &trajectory[3 * *rows];
            row[0] = tried, row[1] = total, row[2] = diameter;
            ++*rows;
        }
    }
    std::memcpy(state, rng.s, sizeof(rng.s));
    stats[0] = current, stats[1] = current_diameter, stats[2] = best_total, stats[3] = best_diameter;
    stats[4] = tried, stats[5] = kept;
    return 0;
}
