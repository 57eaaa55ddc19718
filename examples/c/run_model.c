/*
 * Runs a model compiled by `graphc optimize MODEL -o DIR/NAME.so` from C.
 *
 * Build (NAME is the library's --name, by default its file name):
 *   cc -O2 -std=c11 -I DIR -DMODEL=NAME -DMODEL_HEADER='"NAME.h"' run_model.c \
 *      DIR/NAME.so -Wl,-rpath,DIR -o run_model
 * Run:
 *   ./run_model [OUT_DIR]
 *
 * Every float input is filled with arange(n) / n (n = its element count), the model runs
 * once, and each output is written as raw little-endian bytes to OUT_DIR/output_<i>.bin
 * (default: the current folder) and summarized on stdout with the shape the run reported
 * (for an output whose shape the data decides, info->bounded, the buffer is allocated for
 * the bound its info declares and the run reports the actual shape). It also shows the error
 * codes a bad call gets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include MODEL_HEADER

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define API(fn) CAT(MODEL, CAT(_, fn))

int main(int argc, char **argv) {
    const char *out_dir = argc > 1 ? argv[1] : ".";
    size_t ni = API(num_inputs)(), no = API(num_outputs)();
    void **inputs = calloc(ni ? ni : 1, sizeof *inputs);
    void **outputs = calloc(no ? no : 1, sizeof *outputs);
    int64_t **shapes = calloc(no ? no : 1, sizeof *shapes);
    if (!inputs || !outputs || !shapes) return 1;

    for (size_t i = 0; i < ni; i++) {
        const API(tensor_info) *t = API(input_info)(i);
        if (t->dtype != 1) {
            fprintf(stderr, "input %zu '%s' is not float32; this example fills only floats\n", i,
                    t->name);
            return 1;
        }
        size_t n = t->bytes / sizeof(float);
        float *x = malloc(t->bytes ? t->bytes : 1);
        if (!x) return 1;
        for (size_t k = 0; k < n; k++) x[k] = (float)((double)k / (double)n);
        inputs[i] = x;
    }
    for (size_t j = 0; j < no; j++) {
        const API(tensor_info) *t = API(output_info)(j);
        outputs[j] = malloc(t->bytes ? t->bytes : 1);
        shapes[j] = calloc(t->rank ? (size_t)t->rank : 1, sizeof(int64_t));
        if (!outputs[j] || !shapes[j]) return 1;
    }

    /* Bad calls are refused with an error code, never a crash. */
    int rc = API(run)(NULL, (void *const *)outputs, NULL);
    printf("run with NULL inputs: %d (%s)\n", rc, API(error_string)(rc));
    rc = API(run)((const void *const *)inputs, (void *const *)outputs, (char *)inputs[0] + 1);
    printf("run with a misaligned workspace: %d (%s)\n", rc, API(error_string)(rc));
    rc = API(set_threads)(-1);
    printf("set_threads(-1): %d (%s)\n", rc, API(error_string)(rc));

    rc = API(run_with_shapes)((const void *const *)inputs, (void *const *)outputs,
                              (int64_t *const *)shapes, NULL);
    if (rc != 0) {
        fprintf(stderr, "run failed: %d (%s)\n", rc, API(error_string)(rc));
        return 1;
    }
    printf("threads: %d, workspace: %zu bytes\n", API(get_threads)(), API(workspace_size)());
    for (size_t j = 0; j < no; j++) {
        const API(tensor_info) *t = API(output_info)(j);
        /* The bytes of the reported shape: all of the buffer unless the output is bounded. */
        size_t bytes = t->bytes, bound = 1, actual = 1;
        for (int d = 0; d < t->rank; d++) {
            bound *= (size_t)t->shape[d];
            actual *= (size_t)shapes[j][d];
        }
        if (bound) bytes = bytes / bound * actual;
        char path[4096];
        snprintf(path, sizeof path, "%s/output_%zu.bin", out_dir, j);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(outputs[j], 1, bytes, f) != bytes) {
            fprintf(stderr, "cannot write %s\n", path);
            return 1;
        }
        fclose(f);
        printf("output %zu '%s': dtype %d, shape [", j, t->name, (int)t->dtype);
        for (int d = 0; d < t->rank; d++) printf(d ? ", %lld" : "%lld", (long long)shapes[j][d]);
        printf("]%s -> %s\n", t->bounded ? " (decided by the data)" : "", path);
    }
    API(release)();
    for (size_t i = 0; i < ni; i++) free(inputs[i]);
    for (size_t j = 0; j < no; j++) {
        free(outputs[j]);
        free(shapes[j]);
    }
    free(inputs);
    free(outputs);
    free(shapes);
    return 0;
}
