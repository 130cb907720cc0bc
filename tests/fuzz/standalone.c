/*
 * Corpus replayer: a main() for the fuzz targets when they are built without libFuzzer.
 * Every argument is a file or a directory of files; each file is given once to
 * LLVMFuzzerTestOneInput. A missing or empty corpus is an error, so that a test run that
 * replays nothing cannot pass.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(f);
            fprintf(stderr, "%s: out of memory\n", path);
            return -1;
        }
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        cap *= 2;
        uint8_t *grown = realloc(buf, cap);
        if (!grown)
            free(buf);
        buf = grown;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: read error\n", path);
        free(buf);
        return -1;
    }
    /* An exact-size copy, so that a read past the input is caught by ASan or valgrind. */
    uint8_t *exact = malloc(n ? n : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    if (n)
        memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    unsigned long inputs = 0, errors = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    for (int a = 1; a < argc; a++) {
        struct stat st;
        if (stat(argv[a], &st) != 0) {
            fprintf(stderr, "%s: %s\n", argv[a], strerror(errno));
            errors++;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            errors += run_file(argv[a]) != 0;
            inputs++;
            continue;
        }
        DIR *d = opendir(argv[a]);
        if (!d) {
            fprintf(stderr, "%s: %s\n", argv[a], strerror(errno));
            errors++;
            continue;
        }
        char **names = NULL;
        size_t count = 0, cap = 0;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.')
                continue;
            if (count == cap) {
                cap = cap ? cap * 2 : 256;
                char **grown = realloc(names, cap * sizeof *names);
                if (!grown)
                    abort();
                names = grown;
            }
            size_t len = strlen(argv[a]) + strlen(de->d_name) + 2;
            names[count] = malloc(len);
            if (!names[count])
                abort();
            snprintf(names[count], len, "%s/%s", argv[a], de->d_name);
            count++;
        }
        closedir(d);
        qsort(names, count, sizeof *names, cmp_names);
        for (size_t i = 0; i < count; i++) {
            if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
                errors += run_file(names[i]) != 0;
                inputs++;
            }
            free(names[i]);
        }
        free(names);
    }
    printf("replayed %lu inputs, %lu unreadable\n", inputs, errors);
    if (inputs == 0) {
        fprintf(stderr, "no inputs: the corpus is missing or empty\n");
        return 1;
    }
    return errors ? 1 : 0;
}
