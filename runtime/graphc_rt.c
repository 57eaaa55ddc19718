/*
 * graphc runtime: the persistent thread pool compiled models run their kernels on.
 *
 * The same source is compiled into the graphc binary (for the JIT) and into every shared
 * library `graphc optimize -o out.so` writes, there with GRAPHC_RT_PREFIX set to the model's
 * symbol prefix and hidden visibility, so that several models link into one program.
 *
 * A kernel has the uniform ABI `void kernel(void *const *bufs, uint64_t begin, uint64_t end)`
 * and does the work items [begin, end). `parallel_for` cuts 0..items into at most `nthreads`
 * contiguous parts, each a whole number of grains (the last may be shorter), runs part 0 on
 * the calling thread and the others on the pool's workers, and returns when all are done.
 * Workers spin briefly on a generation counter before sleeping on a condition variable, so
 * back-to-back kernels do not pay a futex wake-up each.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#ifndef GRAPHC_RT_PREFIX
#define GRAPHC_RT_PREFIX graphc_rt_
#endif
#define GRAPHC_CAT2(a, b) a##b
#define GRAPHC_CAT(a, b) GRAPHC_CAT2(a, b)
#define RT(name) GRAPHC_CAT(GRAPHC_RT_PREFIX, name)

#define GRAPHC_MAX_THREADS 256
/* Spin iterations a waiting thread polls before it sleeps (tens of microseconds). */
#define GRAPHC_SPIN 20000

typedef void (*graphc_kernel)(void *const *bufs, uint64_t begin, uint64_t end);

typedef struct graphc_pool graphc_pool;

struct worker {
    graphc_pool *pool;
    int index;
};

struct graphc_pool {
    int nthreads; /* including the calling thread */
    pthread_t threads[GRAPHC_MAX_THREADS];
    struct worker workers[GRAPHC_MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_cond_t done;
    /* The current job, written before `generation` is bumped. */
    graphc_kernel kernel;
    void *const *bufs;
    uint64_t items, grain, chunks;
    int parts;
    atomic_int pending;
    atomic_uint_fast64_t generation;
    atomic_int shutdown;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void run_part(graphc_pool *p, int t) {
    uint64_t c0 = p->chunks * (uint64_t)t / (uint64_t)p->parts;
    uint64_t c1 = p->chunks * (uint64_t)(t + 1) / (uint64_t)p->parts;
    uint64_t lo = c0 * p->grain;
    uint64_t hi = c1 * p->grain;
    if (hi > p->items) hi = p->items;
    if (lo < hi) p->kernel(p->bufs, lo, hi);
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    graphc_pool *p = w->pool;
    uint_fast64_t seen = 0;
    for (;;) {
        uint_fast64_t gen = atomic_load_explicit(&p->generation, memory_order_acquire);
        for (int i = 0; gen == seen && i < GRAPHC_SPIN; i++) {
            if (atomic_load_explicit(&p->shutdown, memory_order_relaxed)) return NULL;
            cpu_relax();
            gen = atomic_load_explicit(&p->generation, memory_order_acquire);
        }
        if (gen == seen) {
            pthread_mutex_lock(&p->mu);
            while ((gen = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
                   !atomic_load(&p->shutdown))
                pthread_cond_wait(&p->wake, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->shutdown)) return NULL;
        seen = gen;
        /* Every worker acknowledges every job, taking part or not, so that no worker still
         * reads the job's fields when the caller writes the next one. */
        if (w->index < p->parts) run_part(p, w->index);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static void stop_workers(graphc_pool *p, int started) {
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->shutdown, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < started; i++) pthread_join(p->threads[i], NULL);
}

/* The number of online CPUs (at least 1). */
int RT(available_threads)(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) return 1;
    if (n > GRAPHC_MAX_THREADS) return GRAPHC_MAX_THREADS;
    return (int)n;
}

/* A pool of `nthreads` threads including the caller (<= 0: the online CPUs); NULL when out
 * of memory or threads. */
graphc_pool *RT(pool_new)(int nthreads) {
    if (nthreads <= 0) nthreads = RT(available_threads)();
    if (nthreads > GRAPHC_MAX_THREADS) nthreads = GRAPHC_MAX_THREADS;
    graphc_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->nthreads = nthreads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->pending, 0);
    atomic_init(&p->generation, 0);
    atomic_init(&p->shutdown, 0);
    for (int i = 1; i < nthreads; i++) {
        p->workers[i].pool = p;
        p->workers[i].index = i;
        if (pthread_create(&p->threads[i], NULL, worker_main, &p->workers[i]) != 0) {
            stop_workers(p, i);
            pthread_mutex_destroy(&p->mu);
            pthread_cond_destroy(&p->wake);
            pthread_cond_destroy(&p->done);
            free(p);
            return NULL;
        }
    }
    return p;
}

/* Stops the workers and frees the pool (NULL is allowed). */
void RT(pool_free)(graphc_pool *p) {
    if (!p) return;
    stop_workers(p, p->nthreads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p);
}

/* The pool's thread count, the caller included (1 for NULL). */
int RT(pool_threads)(const graphc_pool *p) { return p ? p->nthreads : 1; }

/* Runs kernel(bufs, lo, hi) over 0..items as described above; with a NULL pool, on the
 * calling thread only. One parallel_for at a time per pool. */
void RT(parallel_for)(graphc_pool *p, graphc_kernel kernel, void *const *bufs, uint64_t items,
                      uint64_t grain) {
    if (items == 0) return;
    if (grain == 0) grain = 1;
    uint64_t chunks = items / grain + (items % grain != 0);
    int parts = p ? p->nthreads : 1;
    if ((uint64_t)parts > chunks) parts = (int)chunks;
    if (parts <= 1) {
        kernel(bufs, 0, items);
        return;
    }
    p->kernel = kernel;
    p->bufs = bufs;
    p->items = items;
    p->grain = grain;
    p->chunks = chunks;
    p->parts = parts;
    atomic_store_explicit(&p->pending, p->nthreads - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_part(p, 0);
    for (int i = 0; i < GRAPHC_SPIN; i++) {
        if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0) return;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load_explicit(&p->pending, memory_order_acquire) != 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
