/*
 * The placement search of the CloudSim baselines (PABFD), in C.
 *
 * Finding a host for a guest scans every host: does it fit, would the
 * overload detector call it overloaded with the guest added, how much would
 * its power rise? A day of PlanetLab runs ~30,000 such scans over 800 hosts;
 * in NumPy each scan costs tens of microseconds of per-call overhead, here a
 * few. The Python side (presplit/policies/cloudsim/kernel.py) owns the arrays and passes
 * their addresses once per view in a view_t; this file only reads them.
 * The arithmetic mirrors presplit/policies/cloudsim/detectors.py, which is the
 * readable specification and the reference the tests compare against.
 */
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HIST_MAX 64
#define FALLBACK_THRESHOLD 0.7
#define LR_WINDOW 10
#define SPREAD_MIN_SAMPLES 12

enum { DET_THR = 0, DET_LR = 1, DET_IQR = 2, DET_MAD = 3 };

typedef struct {
    int64_t n_hosts;
    int64_t hist_width;
    const double *pe;        /* MIPS of one PE */
    const double *avail;     /* free MIPS as the scheduler counts them */
    const double *ram_free;
    const double *alloc;     /* allocated MIPS (CloudSim's getUtilizationOfCpuMips) */
    const double *total;
    const double *req;       /* requested MIPS the detectors count */
    const double *power_now; /* watts at the last update's utilisation */
    const double *tables;    /* n_hosts x 11 SPECpower watts */
    const double *hist;      /* n_hosts x hist_width, newest first, fraction of host MIPS */
    const int64_t *hist_len;
    const double *max_ram;
    const double *mig_mbps;
    const int64_t *type;     /* host type index: empty idle hosts of one type are interchangeable */
    int64_t n_types;
    double interval_s;
    int64_t enforce_ram;
    int64_t detector;
    double param;
} view_t;

static double power_at(const double *table, double u)
{
    if (u < 0) u = 0;
    if (u > 1) u = 1;
    double x = u * 10.0;
    int lo = (int)floor(x);
    if (lo > 9) lo = 9;
    return table[lo] + (table[lo + 1] - table[lo]) * (x - lo);
}

static void sort_small(double *a, int64_t n)
{
    for (int64_t i = 1; i < n; i++) {
        double v = a[i];
        int64_t j = i - 1;
        while (j >= 0 && a[j] > v) { a[j + 1] = a[j]; j--; }
        a[j + 1] = v;
    }
}

static double median_sorted(const double *a, int64_t n)
{
    return (n % 2) ? a[n / 2] : 0.5 * (a[n / 2 - 1] + a[n / 2]);
}

static int overloaded(const view_t *v, int64_t h, double g_req, const double *g_hist, int64_t g_len, double g_ram)
{
    double total = v->total[h];
    double load = (v->req[h] + g_req) / total;
    if (v->detector == DET_THR) return load > v->param;
    int64_t len = v->hist_len[h] > g_len ? v->hist_len[h] : g_len;
    int64_t need = v->detector == DET_LR ? LR_WINDOW : SPREAD_MIN_SAMPLES;
    if (len < need) return load > FALLBACK_THRESHOLD;
    double data[HIST_MAX];
    const double *row = v->hist + h * v->hist_width;
    for (int64_t i = 0; i < len; i++) data[i] = row[i] + g_hist[i] / total;
    if (v->detector == DET_LR) {
        /* Least squares through x = 1..10, oldest first; data[0] is the newest. */
        double mean = 0, num = 0, sxx = 0;
        for (int i = 0; i < LR_WINDOW; i++) mean += data[i];
        mean /= LR_WINDOW;
        for (int i = 0; i < LR_WINDOW; i++) {
            double xc = (LR_WINDOW - i) - 5.5;
            num += xc * (data[i] - mean);
            sxx += xc * xc;
        }
        double ram = v->max_ram[h] > g_ram ? v->max_ram[h] : g_ram;
        double steps = ceil(ram / v->mig_mbps[h] / v->interval_s);
        double predicted = mean + num / sxx * (LR_WINDOW + steps - 5.5);
        return predicted * v->param >= 1.0;
    }
    sort_small(data, len);
    double spread;
    if (v->detector == DET_IQR) {
        int64_t q1 = (int64_t)floor(0.25 * (len + 1) + 0.5) - 1;
        int64_t q3 = (int64_t)floor(0.75 * (len + 1) + 0.5) - 1;
        spread = data[q3] - data[q1];
    } else {
        double med = median_sorted(data, len);
        for (int64_t i = 0; i < len; i++) data[i] = fabs(data[i] - med);
        sort_small(data, len);
        spread = median_sorted(data, len);
    }
    return load > 1.0 - v->param * spread;
}

/* PABFD: the allowed host with the least power rise, ties to the lowest index; -1 if none. */
int64_t find_host(const view_t *v, const uint8_t *excluded, double r, double g_req,
                  const double *g_hist, int64_t g_len, double g_ram)
{
    int64_t best = -1;
    double best_rise = DBL_MAX;
    uint8_t seen_idle[256];
    int skip_idle = v->n_types <= 256;
    if (skip_idle) memset(seen_idle, 0, (size_t)v->n_types);
    for (int64_t h = 0; h < v->n_hosts; h++) {
        if (excluded[h] || v->pe[h] < r || v->avail[h] < r) continue;
        if (v->enforce_ram && v->ram_free[h] < g_ram) continue;
        if (v->alloc[h] == 0) {
            /* An empty host that was idle at the last update rises exactly like the
             * first such host of its type, which wins the tie: skip the rest. */
            if (skip_idle && v->power_now[h] == v->tables[11 * h]) {
                if (seen_idle[v->type[h]]) continue;
                seen_idle[v->type[h]] = 1;
            }
        } else if (overloaded(v, h, g_req, g_hist, g_len, g_ram)) {
            continue;
        }
        double u = (v->alloc[h] + r) / v->total[h];
        double rise = power_at(v->tables + 11 * h, u) - v->power_now[h];
        if (rise < best_rise) { best_rise = rise; best = h; }
    }
    return best;
}

/* Overload test of hosts as they are (no guest added), for the per-tick scan. */
void overloaded_hosts(const view_t *v, const int64_t *hosts, int64_t n, uint8_t *out)
{
    static const double zero[HIST_MAX] = {0};
    for (int64_t i = 0; i < n; i++) out[i] = (uint8_t)overloaded(v, hosts[i], 0.0, zero, 0, 0.0);
}


/* ------------------------------------------------------------------------
 * One whole decision step of a CloudSim migrating policy (PowerVmAllocation-
 * PolicyMigrationAbstract.optimizeAllocation), on a private copy of the
 * placement: overload scan, guest selection, PABFD placement of the guests
 * taken off, then consolidation of the least-utilised hosts. The Python
 * version of the same steps is presplit/policies/cloudsim/baselines.py with
 * presplit/policies/cloudsim/view.py; tests check that both return the same moves.
 * ------------------------------------------------------------------------ */

enum { SEL_MMT = 0, SEL_MU = 1, SEL_RS = 2 };

typedef struct {
    int64_t n_hosts, n_guests, hist_width;
    const double *pe, *total, *tables, *power_now, *util_stale, *mig_mbps;
    const int64_t *type;
    int64_t n_types;
    double interval_s;
    int64_t enforce_ram;
    double *ram_free;               /* copied by the caller; changed here */
    const double *r, *detect_r, *ram, *mips, *g_hist;
    const int64_t *g_hist_len;
    const uint8_t *in_migration;
    double keep, reserve;
    int64_t detector, selector;
    double param;
    const int64_t *list_ptr;        /* CSR host lists, in CloudSim's list order */
    const int64_t *list_guest;
    const uint8_t *list_incoming;   /* entry is a migrating-in copy at that host */
    const double *uniform;          /* random numbers for RS */
    int64_t n_uniform;
} step_t;

typedef struct {
    int64_t *g; uint8_t *in; int64_t len, cap;
} hlist_t;

typedef struct {
    const step_t *s;
    hlist_t *lists;
    double *need, *alloc, *avail, *req, *hist, *max_ram;
    int64_t *hist_len;
    view_t v;
    int64_t rs_cursor;
} work_t;

static int list_push(hlist_t *l, int64_t g, uint8_t in)
{
    if (l->len == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 8;
        int64_t *ng = realloc(l->g, (size_t)cap * sizeof(int64_t));
        if (!ng) return -1;
        l->g = ng;
        uint8_t *ni = realloc(l->in, (size_t)cap);
        if (!ni) return -1;
        l->in = ni;
        l->cap = cap;
    }
    l->g[l->len] = g;
    l->in[l->len] = in;
    l->len++;
    return 0;
}

static void list_remove(hlist_t *l, int64_t g)
{
    for (int64_t i = 0; i < l->len; i++) {
        if (l->g[i] == g) {
            memmove(l->g + i, l->g + i + 1, (size_t)(l->len - i - 1) * sizeof(int64_t));
            memmove(l->in + i, l->in + i + 1, (size_t)(l->len - i - 1));
            l->len--;
            return;
        }
    }
}

static void recompute(work_t *w, int64_t h)
{
    const step_t *s = w->s;
    const hlist_t *l = &w->lists[h];
    double total = s->total[h], pe = s->pe[h];
    double need = 0;
    for (int64_t i = 0; i < l->len; i++) {
        double c = s->r[l->g[i]] < pe ? s->r[l->g[i]] : pe;
        need += l->in[i] ? c * s->reserve : c;
    }
    int over = need > total;
    double f = over ? total / need : 1.0, alloc = 0, req = 0, max_ram = 0;
    int64_t hist_len = 0, width = s->hist_width;
    double *row = w->hist + h * width;
    for (int64_t k = 0; k < width; k++) row[k] = 0;
    for (int64_t i = 0; i < l->len; i++) {
        int64_t g = l->g[i];
        double c = s->r[g] < pe ? s->r[g] : pe;
        if (l->in[i]) {
            double a = c * s->reserve * f;
            alloc += (over ? floor(a) : a) / s->reserve;
        } else {
            double a = s->in_migration[g] ? c * f * s->keep : c * f;
            alloc += over ? floor(a) : a;
        }
        req += s->detect_r[g];
        const double *gh = s->g_hist + g * width;
        for (int64_t k = 0; k < width; k++) row[k] += gh[k];
        if (s->g_hist_len[g] > hist_len) hist_len = s->g_hist_len[g];
        if (s->ram[g] > max_ram) max_ram = s->ram[g];
    }
    for (int64_t k = 0; k < width; k++) row[k] /= total;
    w->need[h] = need;
    w->alloc[h] = alloc;
    w->avail[h] = over ? 0.0 : total - need;
    w->req[h] = req;
    w->hist_len[h] = hist_len;
    w->max_ram[h] = max_ram;
}

static int place(work_t *w, int64_t g, int64_t h)
{
    if (list_push(&w->lists[h], g, 0)) return -1;
    if (w->s->enforce_ram) w->s->ram_free[h] -= w->s->ram[g];
    recompute(w, h);
    return 0;
}

static void unplace(work_t *w, int64_t g, int64_t h)
{
    list_remove(&w->lists[h], g);
    if (w->s->enforce_ram) w->s->ram_free[h] += w->s->ram[g];
    recompute(w, h);
}

static int64_t search(work_t *w, const uint8_t *excluded, int64_t g)
{
    const step_t *s = w->s;
    return find_host(&w->v, excluded, s->r[g], s->r[g], s->g_hist + g * s->hist_width,
                     s->g_hist_len[g], s->ram[g]);
}

static int host_overloaded(work_t *w, int64_t h)
{
    static const double zero[HIST_MAX] = {0};
    return overloaded(&w->v, h, 0.0, zero, 0, 0.0);
}

/* The guest to take off an overloaded host; -1 when none can move (-2: out of random numbers). */
static int64_t select_guest(work_t *w, int64_t h)
{
    const step_t *s = w->s;
    const hlist_t *l = &w->lists[h];
    int64_t best = -1, movable = 0;
    double best_metric = DBL_MAX;
    for (int64_t i = 0; i < l->len; i++) {
        int64_t g = l->g[i];
        if (s->in_migration[g]) continue;
        movable++;
        double metric = s->selector == SEL_MMT ? s->ram[g] : s->r[g] / s->mips[g];
        if (s->selector != SEL_RS && metric < best_metric) { best_metric = metric; best = g; }
    }
    if (s->selector == SEL_RS && movable > 0) {
        if (w->rs_cursor >= s->n_uniform) return -2;
        int64_t pick = (int64_t)(s->uniform[w->rs_cursor++] * movable);
        if (pick >= movable) pick = movable - 1;
        for (int64_t i = 0; i < l->len; i++) {
            if (s->in_migration[l->g[i]]) continue;
            if (pick-- == 0) { best = l->g[i]; break; }
        }
    }
    return best;
}

static const double *sort_key;
static int by_request_desc(const void *a, const void *b)
{
    /* Descending by requested MIPS; equal keys keep their order (Java's sort is stable). */
    const int64_t *x = a, *y = b;
    double kx = sort_key[x[0]], ky = sort_key[y[0]];
    if (kx > ky) return -1;
    if (kx < ky) return 1;
    return (x[1] > y[1]) - (x[1] < y[1]);
}

static int64_t *sorted_by_request(const step_t *s, const int64_t *guests, int64_t n)
{
    int64_t *pairs = malloc((size_t)(2 * n + 1) * sizeof(int64_t));
    if (!pairs) return NULL;
    for (int64_t i = 0; i < n; i++) { pairs[2 * i] = guests[i]; pairs[2 * i + 1] = i; }
    sort_key = s->r;
    qsort(pairs, (size_t)n, 2 * sizeof(int64_t), by_request_desc);
    for (int64_t i = 0; i < n; i++) pairs[i] = pairs[2 * i];
    return pairs;
}

/* Returns the number of moves written as (guest, host) pairs into moves;
 * -1: out of memory or moves buffer too small, -2: out of random numbers. */
int64_t optimise_step(const step_t *s, int64_t *moves, int64_t max_moves)
{
    int64_t H = s->n_hosts, W = s->hist_width, n_moves = 0, result = -1;
    work_t w = {0};
    w.s = s;
    w.lists = calloc((size_t)H, sizeof(hlist_t));
    w.need = calloc((size_t)H, sizeof(double));
    w.alloc = calloc((size_t)H, sizeof(double));
    w.avail = calloc((size_t)H, sizeof(double));
    w.req = calloc((size_t)H, sizeof(double));
    w.max_ram = calloc((size_t)H, sizeof(double));
    w.hist = calloc((size_t)(H * W), sizeof(double));
    w.hist_len = calloc((size_t)H, sizeof(int64_t));
    uint8_t *over = calloc((size_t)H, 1), *no_source = calloc((size_t)H, 1), *no_target = calloc((size_t)H, 1);
    int64_t *leaving = malloc((size_t)(s->n_guests + 1) * sizeof(int64_t));
    int64_t *batch = malloc((size_t)(s->n_guests + 1) * sizeof(int64_t));
    int64_t *sorted = NULL;
    if (!w.lists || !w.need || !w.alloc || !w.avail || !w.req || !w.max_ram || !w.hist || !w.hist_len
        || !over || !no_source || !no_target || !leaving || !batch) goto done;
    if (W > HIST_MAX) goto done;
    for (int64_t h = 0; h < H; h++) {
        for (int64_t i = s->list_ptr[h]; i < s->list_ptr[h + 1]; i++)
            if (list_push(&w.lists[h], s->list_guest[i], s->list_incoming[i])) goto done;
        recompute(&w, h);
    }
    w.v = (view_t){H, W, s->pe, w.avail, s->ram_free, w.alloc, s->total, w.req, s->power_now, s->tables,
                   w.hist, w.hist_len, w.max_ram, s->mig_mbps, s->type, s->n_types, s->interval_s,
                   s->enforce_ram, s->detector, s->param};

    /* 1. Overloaded hosts give up guests until they are not overloaded. */
    int64_t n_leaving = 0;
    for (int64_t h = 0; h < H; h++) over[h] = (uint8_t)host_overloaded(&w, h);
    for (int64_t h = 0; h < H; h++) {
        if (!over[h]) continue;
        for (;;) {
            int64_t g = select_guest(&w, h);
            if (g == -2) { result = -2; goto done; }
            if (g < 0) break;
            leaving[n_leaving++] = g;
            unplace(&w, g, h);
            if (!host_overloaded(&w, h)) break;
        }
    }
    /* 2. PABFD: biggest request first, onto hosts that are not overloaded. */
    sorted = sorted_by_request(s, leaving, n_leaving);
    if (!sorted) goto done;
    for (int64_t i = 0; i < n_leaving; i++) {
        int64_t g = sorted[i], dst = search(&w, over, g);
        if (dst < 0) continue;
        if (place(&w, g, dst) || n_moves >= max_moves) goto done;
        moves[2 * n_moves] = g; moves[2 * n_moves + 1] = dst; n_moves++;
    }
    /* 3. Consolidation: empty the least-utilised hosts while all their guests fit elsewhere. */
    int64_t excluded_sources = 0;
    for (int64_t h = 0; h < H; h++) {
        no_source[h] = no_target[h] = over[h] || s->util_stale[h] == 0;
        excluded_sources += no_source[h];
    }
    while (excluded_sources < H) {
        int64_t src = -1;
        double lowest = 1.0;
        for (int64_t h = 0; h < H; h++) {
            double u = s->util_stale[h];
            if (no_source[h] || !(u > 0 && u < lowest)) continue;
            /* CloudSim skips hosts whose guests are all migrating out, or one migrating in. */
            const hlist_t *l = &w.lists[h];
            int eligible = 0;
            for (int64_t i = 0; i < l->len; i++) {
                if (!s->in_migration[l->g[i]]) { eligible = 1; break; }
                if (l->in[i]) break;
            }
            if (!eligible) continue;
            lowest = u;
            src = h;
        }
        if (src < 0) break;
        if (!no_source[src]) excluded_sources++;
        no_source[src] = no_target[src] = 1;
        const hlist_t *l = &w.lists[src];
        int64_t n = 0;
        for (int64_t i = 0; i < l->len; i++)
            if (!s->in_migration[l->g[i]]) batch[n++] = l->g[i];
        if (n == 0) continue;
        free(sorted);
        sorted = sorted_by_request(s, batch, n);
        if (!sorted) goto done;
        int64_t first = n_moves;
        for (int64_t i = 0; i < n; i++) {
            int64_t g = sorted[i], dst = search(&w, no_target, g);
            if (dst < 0) {
                for (int64_t k = n_moves - 1; k >= first; k--) unplace(&w, moves[2 * k], moves[2 * k + 1]);
                n_moves = first;
                break;
            }
            if (place(&w, g, dst) || n_moves >= max_moves) goto done;
            moves[2 * n_moves] = g; moves[2 * n_moves + 1] = dst; n_moves++;
        }
        for (int64_t k = first; k < n_moves; k++) {
            int64_t d = moves[2 * k + 1];
            if (!no_source[d]) { no_source[d] = 1; excluded_sources++; }
        }
    }
    result = n_moves;
done:
    if (w.lists) {
        for (int64_t h = 0; h < H; h++) { free(w.lists[h].g); free(w.lists[h].in); }
    }
    free(w.lists); free(w.need); free(w.alloc); free(w.avail); free(w.req); free(w.max_ram);
    free(w.hist); free(w.hist_len); free(over); free(no_source); free(no_target);
    free(leaving); free(batch); free(sorted);
    return result;
}

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_placement",
    "C kernel of the placement search; loaded with ctypes by presplit.sim.kernel.", -1, NULL};

PyMODINIT_FUNC PyInit__placement(void) { return PyModule_Create(&module); }
