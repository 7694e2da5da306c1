/* cmdline.h: the command line's options, parsed once. */
#ifndef DEPLOY_CMDLINE_H
#define DEPLOY_CMDLINE_H

struct options {
	int		 quiet;		/* -q */
	int		 verbose;	/* -v */
	int		 dry_run;	/* -n */
	int		 no_migrate;	/* -M */
	int		 json;		/* --json */
	int		 verify;	/* --verify (audit) */
	long		 wait;		/* -w: seconds to wait for the lock */
	long		 keep;		/* -k; 0 when not given */
	const char	*root;		/* -C DIR */
	const char	*config;	/* -c FILE */
	const char	*command;	/* the command's name: logs, the lock */
};

extern const struct options *const options;

void	cmdline_parse(int *argc, char ***argv);
void	usage(int status) __attribute__((noreturn));

#endif
