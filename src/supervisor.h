/*
 * supervisor.h: what supervisord's answers mean, and the state of the
 * program.
 */
#ifndef DEPLOY_SUPERVISOR_H
#define DEPLOY_SUPERVISOR_H

#include <stddef.h>

/*
 * A group ("web:*") is restarted one process at a time, so that while one
 * restarts the others keep serving and keep open the listening socket
 * that supervisord holds for an [fcgi-program] (it closes with the last
 * process).
 */
#define MAXMEMBERS	256

struct member {
	char		 name[256];
	char		 state[32];
	long		 pid;
	long		 start;	/* when supervisord started it */
};

extern int spawnerr;
extern char members_why[];
int sv_denied(void);
void sv_denied_why(char *why, size_t wl);
void close_programs(const char *entry, char *buf, size_t bl);
int program_entry(int i, char *buf, size_t bl);
int program_state(const char *prog, char *state, size_t sl, long *pid,
    char *pids, size_t pidl);
int sv_restart(const char *name, const char *sha, int back, char *why,
    size_t wl);
const char *spawn_why(void);
int is_group(const char *entry);
int group_members(const char *name, struct member *m, int max);
int program_members(struct member *m, char (*rs)[65], int max);
int program_wrong(char *what, size_t wl);
void spawn_forget(void);
#endif
