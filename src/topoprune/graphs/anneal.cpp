// Native swap search for topoprune.graphs.swap: simulated annealing (or greedy descent) on the
// total distance of a connected k-regular graph, by degree-preserving double-edge swaps.
//
// Plain C++ with no Python headers, loaded through ctypes. Two ways to score a candidate, one
// loop (anneal) for both:
// - BfsScore: an exact all-sources bitset BFS (one uint64 word per 64 nodes), stopped as soon as
//   a lower bound on its distance sum passes the value the acceptance test allows. Any graph,
//   optionally searched under a rotational symmetry.
// - TwoHopScore: for graphs of diameter <= 3, whose distance sum is fixed by the number of pairs
//   more than two hops apart. It keeps every pair's common-neighbour count and updates the 8k
//   counts a swap changes; a swap that would leave a pair four hops apart is refused.

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

// The (n, k) neighbour table of a k-regular graph, edited in place.
struct Table {
    int64_t n, k;
    int32_t *nbr;

    int64_t at(int64_t v, int64_t j) const { return nbr[v * k + j]; }

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
    }
};

// A double-edge swap: edges (a, b), (c, d) become (a, c), (b, d).
struct Swap {
    int64_t a, b, c, d;
};

// Scores by exact BFS. The graph may be invariant under the rotation v -> v + m (mod n): g = n / m
// copies of every edge. Distances are then counted from the m sources 0..m-1 only and scaled
// by g, and every swap is applied to all g rotated copies at once, so the graph stays invariant.
struct BfsScore {
    Table &table;
    int64_t n, k, m, g, words, adj_words;
    std::vector<uint64_t> adj;    // (n, adj_words) adjacency bitsets
    std::vector<uint64_t> reach;  // (n, words): per node, the sources within the current level
    std::vector<uint64_t> next;   // (n, words) scratch for the next level
    std::vector<uint64_t> far;    // (n, words): see mark_far
    bool aiming = false;          // whether `far` is kept up to date (prepare)
    int64_t work = 0;             // word operations done, for the clock

    BfsScore(Table &table_, int64_t m_)
        : table(table_), n(table_.n), k(table_.k), m(m_), g(table_.n / m_),
          words((m_ + 63) / 64), adj_words((table_.n + 63) / 64),
          adj(table_.n * ((table_.n + 63) / 64), 0), reach(table_.n * words),
          next(table_.n * words) {
        for (int64_t v = 0; v < n; ++v)
            for (int64_t j = 0; j < k; ++j) flip(v, table.at(v, j));
    }

    void flip(int64_t u, int64_t v) { adj[u * adj_words + (v >> 6)] ^= 1ULL << (v & 63); }

    bool linked(int64_t u, int64_t v) const {
        return (adj[u * adj_words + (v >> 6)] >> (v & 63)) & 1ULL;
    }

    void rewire(int64_t a, int64_t b, int64_t c, int64_t d) {
        table.rewire(a, b, c, d);
        flip(a, b), flip(b, a), flip(c, d), flip(d, c);
        flip(a, c), flip(c, a), flip(b, d), flip(d, b);
    }

    int64_t shifted(int64_t v, int64_t copy) const { return (v + copy * m) % n; }

    // How many distinct rotated copies the swap has: g / 2 when both edges join nodes half a
    // turn apart (copy i + g/2 is then copy i again), else g.
    int64_t copies(const Swap &s) const {
        if (g % 2 != 0) return g;
        const int64_t half = g / 2;
        const bool repeats = shifted(s.a, half) == s.b && shifted(s.b, half) == s.a &&
                             shifted(s.c, half) == s.d && shifted(s.d, half) == s.c;
        return repeats ? half : g;
    }

    // The swap in all its rotated copies, one after another; if any copy is not a valid swap at
    // its turn (an edge missing, a loop or a repeated edge made), the copies done are undone and
    // false is returned.
    bool apply(const Swap &s) {
        const int64_t count = copies(s);
        for (int64_t i = 0; i < count; ++i) {
            const int64_t A = shifted(s.a, i), B = shifted(s.b, i), C = shifted(s.c, i),
                          D = shifted(s.d, i);
            if (A == C || A == D || B == C || B == D || !linked(A, B) || !linked(C, D) ||
                linked(A, C) || linked(B, D)) {
                undo_copies(s, i);
                return false;
            }
            rewire(A, B, C, D);
        }
        return true;
    }

    void undo(const Swap &s) { undo_copies(s, copies(s)); }

    // Undo the first `done` rotated copies of apply(s), last first.
    void undo_copies(const Swap &s, int64_t done) {
        for (int64_t i = done - 1; i >= 0; --i)
            rewire(shifted(s.a, i), shifted(s.c, i), shifted(s.b, i), shifted(s.d, i));
    }

    // Sum of distances over ordered node pairs, or -1 once it provably exceeds `limit`, or -2 if
    // the graph is disconnected. `diameter` is set when the exact sum is returned. With
    // `stop_level`, the search stops there (returning -1) and leaves in `reach` the sources
    // within that distance of each node.
    int64_t score(double limit, int64_t *diameter, int64_t stop_level = INT64_MAX) {
        const int64_t all = n * m;  // (node, source) pairs, each node paired with itself too
        std::fill(reach.begin(), reach.end(), 0);
        for (int64_t v = 0; v < n; ++v) {
            uint64_t *row = &reach[v * words];
            if (v < m) row[v >> 6] |= 1ULL << (v & 63);
            for (int64_t j = 0; j < k; ++j) {
                const int64_t u = table.at(v, j);
                if (u < m) row[u >> 6] |= 1ULL << (u & 63);
            }
        }
        int64_t reached = m + m * k, total = m * k, level = 1;
        while (reached < all) {
            if (level == stop_level) return -1;
            ++level;
            work += n * k * words;
            int64_t count = 0;
            for (int64_t v = 0; v < n; ++v) {
                uint64_t *out = &next[v * words];
                std::memcpy(out, &reach[v * words], words * sizeof(uint64_t));
                for (int64_t j = 0; j < k; ++j) {
                    const uint64_t *in = &reach[table.at(v, j) * words];
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

    // Called with the current diameter at the start and after every kept swap: with `aim`,
    // keeps in `far` the sources within distance diameter - 1 of each node. The pairs outside
    // are the farthest apart, which aimed swaps bring closer.
    void prepare(int64_t diameter, bool aim) {
        aiming = aim && diameter >= 3;
        if (!aiming) return;
        int64_t unused = 0;
        score(1e300, &unused, diameter - 1);
        far = reach;
    }

    // A swap that brings a farthest pair within distance 2: a is a source at the diameter's
    // distance from some node v, c a neighbour of v. False if none is drawn.
    bool draw_aimed(Rng &rng, Swap *s) const {
        if (!aiming) return false;
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
        s->a = u;
        s->b = table.at(s->a, rng.below(k));
        s->c = table.at(v, rng.below(k));
        s->d = table.at(s->c, rng.below(k));
        return true;
    }
};

// Scores graphs of diameter <= 3 by counting: a pair is within two hops iff it is linked or has
// a common neighbour, and with diameter 3 the ordered distance sum is
// 2 n (n - 1) - n k + 2 P, P being the pairs more than two hops apart ("uncovered").
// cell[u * n + v] holds the common-neighbour count of u and v, plus LINKED when they are
// linked, so a pair is uncovered exactly when its cell is 0.
struct TwoHopScore {
    static constexpr uint16_t LINKED = 0x8000;
    Table &table;
    int64_t n, k;
    std::vector<uint16_t> cell;  // (n, n)
    int64_t uncovered = 0;       // P: unordered pairs whose cell is 0
    int64_t pending = 0;         // the change in P of the swap applied and not yet scored
    int64_t work = 0;            // cell updates and reads, for the clock

    explicit TwoHopScore(Table &table_)
        : table(table_), n(table_.n), k(table_.k), cell(table_.n * table_.n, 0) {
        for (int64_t v = 0; v < n; ++v)
            for (int64_t i = 0; i < k; ++i) {
                cell[v * n + table.at(v, i)] |= LINKED;
                for (int64_t j = 0; j < k; ++j)
                    if (i != j) ++cell[table.at(v, i) * n + table.at(v, j)];
            }
        for (int64_t u = 0; u < n; ++u)
            for (int64_t v = u + 1; v < n; ++v) uncovered += cell[u * n + v] == 0;
    }

    bool linked(int64_t u, int64_t v) const { return cell[u * n + v] & LINKED; }

    void toggle_link(int64_t u, int64_t v) { cell[u * n + v] ^= LINKED, cell[v * n + u] ^= LINKED; }

    // Adds `step` to the cell of (u, v); returns the change in P.
    int64_t bump(int64_t u, int64_t v, int step) {
        const uint16_t before = cell[u * n + v], after = (uint16_t)(before + step);
        cell[u * n + v] = cell[v * n + u] = after;
        return (int64_t)(after == 0) - (int64_t)(before == 0);
    }

    // Adds `step` to the cells of v with every neighbour of u except `skip`.
    int64_t bump_row(int64_t u, int64_t skip, int64_t v, int step) {
        int64_t change = 0;
        for (int64_t j = 0; j < k; ++j) {
            const int64_t x = table.at(u, j);
            if (x != skip) change += bump(v, x, step);
        }
        return change;
    }

    // Apply swap s to the cells and the table; returns the change in P. The edges come and go
    // one at a time; each removal (u, v) takes u off the common neighbours of v and u's other
    // neighbours (and the other way round), each addition puts it back on.
    int64_t rewire(const Swap &s) {
        const int64_t a = s.a, b = s.b, c = s.c, d = s.d;
        int64_t change = (cell[a * n + b] == LINKED) + (cell[c * n + d] == LINKED) -
                         (cell[a * n + c] == 0) - (cell[b * n + d] == 0);
        toggle_link(a, b), toggle_link(c, d), toggle_link(a, c), toggle_link(b, d);
        change += bump_row(a, b, b, -1) + bump_row(b, a, a, -1);  // (a, b) goes
        change += bump_row(c, d, d, -1) + bump_row(d, c, c, -1);  // (c, d) goes
        change += bump_row(a, b, c, 1) + bump_row(c, d, a, 1);    // (a, c) comes
        change += bump_row(b, a, d, 1) + bump_row(d, c, b, 1);    // (b, d) comes
        table.rewire(a, b, c, d);
        work += 8 * k;
        return change;
    }

    bool apply(const Swap &s) {
        if (s.a == s.c || s.a == s.d || s.b == s.c || s.b == s.d || linked(s.a, s.c) ||
            linked(s.b, s.d))
            return false;
        pending = rewire(s);
        return true;
    }

    void undo(const Swap &s) { rewire({s.a, s.c, s.b, s.d}); }

    int64_t total(int64_t pairs_uncovered) const {
        return 2 * n * (n - 1) - n * k + 2 * pairs_uncovered;
    }

    // Whether every uncovered pair (u, v) is three hops apart: some neighbour of u is within
    // two hops of v.
    bool within_three() {
        work += n * n / 2;
        for (int64_t u = 0; u < n; ++u)
            for (int64_t v = u + 1; v < n; ++v) {
                if (cell[u * n + v] != 0) continue;
                bool near = false;
                for (int64_t j = 0; j < k && !near; ++j) near = cell[table.at(u, j) * n + v] != 0;
                if (!near) return false;
            }
        return true;
    }

    // The distance sum after the swap applied, or -1 if it exceeds `limit` or some pair is now
    // four hops apart (the diameter would rise past 3).
    int64_t score(double limit, int64_t *diameter) {
        const int64_t after = uncovered + pending;
        if ((double)total(after) > limit || !within_three()) return -1;
        uncovered = after;
        *diameter = after > 0 ? 3 : (k == n - 1 ? 1 : 2);
        return total(after);
    }

    void prepare(int64_t, bool) {}

    // A swap that brings an uncovered pair (u, v) within two hops: a neighbour a of u is
    // rewired to v. False if no uncovered pair turned up in a few draws.
    bool draw_aimed(Rng &rng, Swap *s) const {
        if (uncovered == 0) return false;
        for (int tries = 0; tries < 64; ++tries) {
            const int64_t u = rng.below(n), v = rng.below(n);
            if (u == v || cell[u * n + v] != 0) continue;
            s->a = table.at(u, rng.below(k));
            s->b = table.at(s->a, rng.below(k));
            s->c = v;
            s->d = table.at(v, rng.below(k));
            return true;
        }
        return false;
    }
};

// The search parameters of one call (see topoprune_anneal).
struct Schedule {
    int64_t steps;
    double seconds, temp_start, temp_end, aimed;
};

// Simulated annealing (or greedy descent) on the distance sum, scored by `scorer`. See
// topoprune_anneal for the arguments.
template <class Scorer>
void anneal(Scorer &scorer, const Table &table, Rng &rng, const Schedule &plan, int32_t *best,
            int64_t *stats, int64_t *trajectory, int64_t capacity, int64_t *rows) {
    const double started = now_seconds();
    const bool cooling = plan.temp_start > 0.0 && plan.temp_end > 0.0;
    const double ratio = cooling ? plan.temp_end / plan.temp_start : 1.0;
    const int64_t n = table.n, k = table.k;
    int64_t current = stats[0], current_diameter = stats[1];
    int64_t best_total = stats[2], best_diameter = stats[3];
    int64_t tried = 0, kept = 0;
    double temperature = cooling ? plan.temp_start : 0.0;
    *rows = 0;
    const bool aim = plan.aimed > 0.0;
    scorer.prepare(current_diameter, aim);
    while (tried < plan.steps && *rows < capacity) {
        // The clock (and the temperature) is updated before the first swap and then after about
        // CLOCK_WORK operations, so a call makes progress and stops close to its time even when
        // one score is long, without reading the clock around every cheap swap.
        if (tried == 0 || scorer.work >= CLOCK_WORK) {
            scorer.work = 0;
            const double elapsed = plan.seconds > 0.0 ? now_seconds() - started : 0.0;
            if (tried > 0 && plan.seconds > 0.0 && elapsed >= plan.seconds) break;
            if (cooling) {
                double fraction = (double)tried / (double)plan.steps;
                if (plan.seconds > 0.0 && elapsed / plan.seconds > fraction)
                    fraction = elapsed / plan.seconds;
                temperature = plan.temp_start * std::pow(ratio, fraction);
            }
        }
        ++tried, ++scorer.work;
        Swap s;
        if (!(aim && rng.unit() < plan.aimed && scorer.draw_aimed(rng, &s))) {
            s.a = rng.below(n), s.c = rng.below(n);
            s.b = table.at(s.a, rng.below(k)), s.d = table.at(s.c, rng.below(k));
        }
        if (!scorer.apply(s)) continue;
        const double limit =
            (double)current - (temperature > 0.0 ? temperature * std::log1p(-rng.unit()) : 0.0);
        int64_t diameter = 0;
        const int64_t total = scorer.score(limit, &diameter);
        if (total < 0) {
            scorer.undo(s);
            continue;
        }
        ++kept;
        current = total, current_diameter = diameter;
        scorer.prepare(diameter, aim);
        if (total < best_total || (total == best_total && diameter < best_diameter)) {
            best_total = total, best_diameter = diameter;
            std::memcpy(best, table.nbr, n * k * sizeof(int32_t));
            int64_t *row = &trajectory[3 * *rows];
            row[0] = tried, row[1] = total, row[2] = diameter;
            ++*rows;
        }
    }
    stats[0] = current, stats[1] = current_diameter, stats[2] = best_total, stats[3] = best_diameter;
    stats[4] = tried, stats[5] = kept;
}

}  // namespace

// Try up to `steps` swaps on the graph `nbr` (n, k), for at most `seconds` (<= 0: no limit).
// With m < n (m dividing n) the graph must be invariant under v -> v + m (mod n) and stays so.
// With `two_hop` (m == n only) the graph must have diameter <= 3 and keeps it: candidates are
// scored by TwoHopScore, else by BfsScore.
// A swap whose distance sum changes by delta is kept with probability min(1, exp(-delta / T)),
// T falling geometrically from temp_start to temp_end over the call (by steps or seconds,
// whichever runs out first) when both are > 0; otherwise a swap is kept when the sum does not
// rise. A fraction `aimed` of the swaps drawn is aimed at a pair far apart (see the scorers'
// draw_aimed), the rest are uniform. The call always tries at least one swap. `state` (4 words)
// is the random state, carried between calls. `stats` holds, in and out: [0] current distance
// sum, [1] current diameter, [2] best sum, [3] best diameter; out: [4] swaps tried, [5] swaps
// kept. `best` (n, k) receives each new best graph (lowest sum, then lowest diameter). Each new
// best is also written as a row (step, sum, diameter) of `trajectory` (capacity rows); the call
// returns early when it is full. `*rows` is the number written. Returns 0.
extern "C" int topoprune_anneal(int64_t n, int64_t k, int64_t m, int32_t *nbr, uint64_t *state,
                                int64_t steps, double seconds, double temp_start,
                                double temp_end, double aimed, int64_t two_hop, int32_t *best,
                                int64_t *stats, int64_t *trajectory, int64_t capacity,
                                int64_t *rows) {
    Table table{n, k, nbr};
    Rng rng;
    std::memcpy(rng.s, state, sizeof(rng.s));
    const Schedule plan{steps, seconds, temp_start, temp_end, aimed};
    if (two_hop) {
        TwoHopScore scorer(table);
        anneal(scorer, table, rng, plan, best, stats, trajectory, capacity, rows);
    } else {
        BfsScore scorer(table, m);
        anneal(scorer, table, rng, plan, best, stats, trajectory, capacity, rows);
    }
    std::memcpy(state, rng.s, sizeof(rng.s));
    return 0;
}
