/*
 * output.h: what the admin reads of a step: its live line, its result, the
 * tail, the log.
 */
#ifndef DEPLOY_OUTPUT_H
#define DEPLOY_OUTPUT_H

#include <stddef.h>
#include <stdio.h>

#define TAILMAX	8192
extern int logfd;
extern int stepno;
extern char tail[TAILMAX];
extern size_t taillen;
extern double stepstart;
void tail_add(const char *p, size_t n);
void put_output(FILE *f, const char *p, size_t n);
void tail_show(int lines);
void log_write(const char *p, size_t n);
void logf_(const char *fmt, ...);
void step_tick(void);
void live_clear(void);
void step_begin(const char *name);
void step_done(const char *name, const char *note);
void step_ok(const char *name);
void step_skip(const char *name, const char *why);
void step_fail(const char *name, const char *why, int showtail);
void open_log(const char *sha, int truncate);
size_t tail_length(void);
void tail_keep(size_t n);
void step_started(double t);
#endif
