/*
 * Compiled single-pass moments kernel behind normcore.stats.MomentsState.
 *
 * The kernel is the only code in normcore that does per-element arithmetic on
 * statistics. It is compiled ahead of time (setup.py) and imported like any module:
 * no JIT, no start-up work, and it releases the GIL, so the local engine folds
 * fragments on several threads. It reads a float64 array once from memory, in
 * blocks that stay in the CPU cache, and for each block:
 *
 * 1. takes deviations from `pivot` (a value of the data) and from a running
 *    `shift` close to the mean, d = (x - pivot) - shift, and sums d and d*d in
 *    four independent lanes (strict IEEE order: built without -ffast-math and
 *    with -ffp-contract=off, so the compiler neither re-associates nor fuses);
 * 2. derives the block's sum of squared deviations s2 - s1**2/n; when that
 *    cancels more than 4x (the block's mean is far from `shift`) it recomputes it
 *    with a second, two-pass sweep over the cached block, so the relative error
 *    stays at a few ulps whatever the data;
 * 3. folds the block into the running result with Chan's update, in deviation
 *    space.
 *
 * Because deviations are taken from a pivot, a column 1e12 + N(0, 1) is summed
 * as N(0, 1)-sized numbers: the variance keeps ~15 significant digits where the
 * textbook formulas lose 7 (Chan on raw values) or all of them (sum of squares).
 *
 * Min and max are taken on the IEEE-754 bit patterns mapped to ordered integers,
 * which vectorises where float min/max does not. A block whose sums come out
 * non-finite (it holds a NaN or an infinity, or its squares overflow) takes a
 * branchy slow path that counts and skips the non-finite values.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Elements per block (64 KiB of float64, cache-resident for the second sweep). */
#define BLOCK 8192
/* A block whose M2 is below this fraction of its raw sum of squares is recomputed two-pass. */
#define CANCELLATION_LIMIT 0.25
#define MAGNITUDE INT64_MAX

/* Maps float64 bit patterns to int64 keys with the same order (an involution). */
static inline int64_t ordered(int64_t bits) { return bits ^ ((bits >> 63) & MAGNITUDE); }

static inline int is_finite(double v) { return v - v == 0.0; }

static inline __attribute__((always_inline)) void block_sums(const double *values, Py_ssize_t start, Py_ssize_t stop, double pivot, double shift,
                       double *s1, double *s2) {
    double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
    double b0 = 0.0, b1 = 0.0, b2 = 0.0, b3 = 0.0;
    Py_ssize_t i = start;
    for (; i + 4 <= stop; i += 4) {
        double d0 = (values[i] - pivot) - shift;
        double d1 = (values[i + 1] - pivot) - shift;
        double d2 = (values[i + 2] - pivot) - shift;
        double d3 = (values[i + 3] - pivot) - shift;
        a0 += d0;
        a1 += d1;
        a2 += d2;
        a3 += d3;
        b0 += d0 * d0;
        b1 += d1 * d1;
        b2 += d2 * d2;
        b3 += d3 * d3;
    }
    for (; i < stop; i++) {
        double d0 = (values[i] - pivot) - shift;
        a0 += d0;
        b0 += d0 * d0;
    }
    *s1 = (a0 + a1) + (a2 + a3);
    *s2 = (b0 + b1) + (b2 + b3);
}

static inline __attribute__((always_inline)) void block_range(const int64_t *bits, Py_ssize_t start, Py_ssize_t stop, int64_t *key_lo, int64_t *key_hi) {
    int64_t lo = *key_lo, hi = *key_hi;
    for (Py_ssize_t i = start; i < stop; i++) {
        int64_t k = ordered(bits[i]);
        lo = k < lo ? k : lo;
        hi = k > hi ? k : hi;
    }
    *key_lo = lo;
    *key_hi = hi;
}

typedef struct {
    int64_t count, nan_count, inf_count;
    double mean_dev, m2, lo, hi;
} Moments;

/* Block with NaN or +-inf: branch per element, two-pass over the finite ones. */
static Moments slow_block(const double *values, Py_ssize_t start, Py_ssize_t stop, double pivot) {
    Moments out = {0, 0, 0, 0.0, 0.0, INFINITY, -INFINITY};
    double total = 0.0;
    for (Py_ssize_t i = start; i < stop; i++) {
        double v = values[i];
        if (is_finite(v)) {
            total += v - pivot;
            out.count++;
            out.lo = v < out.lo ? v : out.lo;
            out.hi = v > out.hi ? v : out.hi;
        } else if (v != v) {
            out.nan_count++;
        }
    }
    out.inf_count = (stop - start) - out.count - out.nan_count;
    if (out.count == 0) return out;
    out.mean_dev = total / (double)out.count;
    for (Py_ssize_t i = start; i < stop; i++) {
        double v = values[i];
        if (is_finite(v)) {
            double e = (v - pivot) - out.mean_dev;
            out.m2 += e * e;
        }
    }
    return out;
}

/* Built twice, for AVX2 and for any x86-64 (the loader picks one); the vector lanes hold the
 * same four independent sums either way, so both give the same bits. */
__attribute__((target_clones("avx2", "default"))) static Moments moments(const double *values, Py_ssize_t n,
                                                                          double pivot) {
    const int64_t *bits = (const int64_t *)values;
    Moments out = {0, 0, 0, 0.0, 0.0, INFINITY, -INFINITY};
    int64_t key_lo = MAGNITUDE, key_hi = -MAGNITUDE;
    for (Py_ssize_t start = 0; start < n; start += BLOCK) {
        Py_ssize_t stop = start + BLOCK < n ? start + BLOCK : n;
        double shift = out.mean_dev, s1, s2, block_mean, m2_of_block;
        int64_t block_count;
        block_sums(values, start, stop, pivot, shift, &s1, &s2);
        if (isfinite(s1) && isfinite(s2)) {
            /* Finite sums imply finite values: NaN and inf propagate into them. */
            block_range(bits, start, stop, &key_lo, &key_hi);
            block_count = stop - start;
            double centred = s1 / (double)block_count;
            m2_of_block = s2 - s1 * centred;
            block_mean = shift + centred;
            if (!(m2_of_block > CANCELLATION_LIMIT * s2)) {
                /* Second sweep: squared deviations from the block's own mean (its s2). */
                double unused;
                block_sums(values, start, stop, pivot, block_mean, &unused, &m2_of_block);
            }
        } else {
            Moments slow = slow_block(values, start, stop, pivot);
            out.nan_count += slow.nan_count;
            out.inf_count += slow.inf_count;
            out.lo = slow.lo < out.lo ? slow.lo : out.lo;
            out.hi = slow.hi > out.hi ? slow.hi : out.hi;
            if (slow.count == 0) continue;
            block_count = slow.count;
            block_mean = slow.mean_dev;
            m2_of_block = slow.m2;
        }
        int64_t total = out.count + block_count;
        double delta = block_mean - out.mean_dev;
        out.mean_dev += delta * ((double)block_count / (double)total);
        out.m2 += m2_of_block + delta * delta * ((double)out.count * (double)block_count / (double)total);
        out.count = total;
    }
    if (out.count > 0 && key_lo <= key_hi) {
        int64_t keys[2] = {ordered(key_lo), ordered(key_hi)};
        double fast[2];
        memcpy(fast, keys, sizeof fast);
        out.lo = fast[0] < out.lo ? fast[0] : out.lo;
        out.hi = fast[1] > out.hi ? fast[1] : out.hi;
    }
    return out;
}

/* A C-contiguous 1-D float64 buffer of `object`, or NULL with TypeError set. */
static int float64_buffer(PyObject *object, Py_buffer *view) {
    if (PyObject_GetBuffer(object, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if (view->ndim != 1 || view->itemsize != 8 || view->format == NULL || strcmp(view->format, "d") != 0) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_TypeError, "expected a contiguous 1-D float64 array");
        return -1;
    }
    return 0;
}

static PyObject *py_first_finite(PyObject *self, PyObject *args) {
    PyObject *object;
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "O:first_finite", &object) || float64_buffer(object, &view) < 0) return NULL;
    const double *values = (const double *)view.buf;
    Py_ssize_t n = view.shape[0];
    double found = NAN;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        if (is_finite(values[i])) {
            found = values[i];
            break;
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return PyFloat_FromDouble(found);
}

static PyObject *py_moments(PyObject *self, PyObject *args) {
    PyObject *object;
    double pivot;
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "Od:moments_kernel", &object, &pivot) || float64_buffer(object, &view) < 0) {
        return NULL;
    }
    Moments out;
    Py_BEGIN_ALLOW_THREADS
    out = moments((const double *)view.buf, view.shape[0], pivot);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return Py_BuildValue("(LLLdddd)", (long long)out.count, (long long)out.nan_count, (long long)out.inf_count,
                         out.mean_dev, out.m2, out.lo, out.hi);
}

static PyMethodDef methods[] = {
    {"first_finite", py_first_finite, METH_VARARGS,
     "first_finite(values)\n--\n\nThe first finite element of a contiguous float64 array, or NaN when there is none."},
    {"moments_kernel", py_moments, METH_VARARGS,
     "moments_kernel(values, pivot)\n--\n\n"
     "Count, mean deviation, M2, min, max and non-finite counts of a contiguous float64 array.\n\n"
     "Returns ``(count, nan_count, inf_count, mean_dev, m2, min, max)``: ``mean_dev`` is the mean of\n"
     "``values - pivot`` over the finite values (``pivot`` finite, a value of the data), ``m2`` the\n"
     "sum of squared deviations from their mean; NaN and +-inf are counted and otherwise left out.\n"
     "``min`` / ``max`` are ``+inf`` / ``-inf`` when no value is finite. The GIL is released."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_moments", "Compiled single-pass moments kernel.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__moments(void) { return PyModule_Create(&module); }
