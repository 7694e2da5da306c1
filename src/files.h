/* files.h: file helpers: paths, times, whole-file reads and atomic replaces. */
#ifndef DEPLOY_FILES_H
#define DEPLOY_FILES_H

#include <sys/stat.h>
#include <stddef.h>

double now(void);
char *fmtpath(const char *fmt, ...) __attribute__((returns_nonnull));
const char *fmttime(long long t);
const char *printable(const char *s);
int write_all(int fd, const char *p, size_t n);
int append_line(int fd, const char *line, size_t n);
char *read_file_at(int dfd, const char *name, size_t max, size_t *len,
    struct stat *st);
int replace_file_at(int dfd, const char *name, const char *data, size_t len,
    int durable);
int path_lookup(const char *name, char *out, size_t outlen);
int write_new(const char *dir, const char *name, const char *buf, size_t len);
void flush_fs(int fd);
#endif
