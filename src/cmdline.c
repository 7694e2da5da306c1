/*
 * cmdline.c: the command line: options (before or after the command),
 * usage, and the one struct options they fill, written here only.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmdline.h"
#include "core.h"
#include "files.h"
#include "msg.h"

#ifndef VERSION
#define VERSION "unknown"
#endif

static struct options o = { .command = "deploy" };
const struct options *const options = &o;

void
usage(int status)
{
	fputs("usage: deploy [-C root] [-c config] [-k keep] [-w seconds] "
	    "[-nMqvV] [--json] [command [args]]\n"
	    "commands: init URL [BRANCH] | deploy [REF] | prepare [REF] | "
	    "activate REV\n"
	    "          rollback [REV] | migrate REV | list | status | log [REV] "
	    "| prune\n"
	    "          pause [REASON] | resume | help\n"
	    "          run [--] COMMAND [ARG...]\n"
	    "          audit [--json] [-n N] | audit --verify\n",
	    status ? stderr : stdout);
	leave(status);
}

static void
parse_opts(int argc, char *argv[])
{
	int ch;

	opterr = 0;
	while ((ch = getopt(argc, argv, "+:C:c:k:w:nqvhMV")) != -1) {
		switch (ch) {
		case 'C':
			o.root = optarg;
			break;
		case 'c':
			o.config = optarg;
			break;
		case 'k':
			if (parse_long(optarg, 2, 10000, &o.keep) == -1)
				die(EXIT_USAGE, "-k %s: keep is a number from 2 "
				    "to 10000", optarg);
			break;
		case 'w':
			if (parse_long(optarg, 0, 86400, &o.wait) == -1)
				die(EXIT_USAGE, "-w %s: seconds from 0 to 86400",
				    optarg);
			break;
		case 'n':
			o.dry_run = 1;
			break;
		case 'q':
			o.quiet = 1;
			o.verbose = 0;
			break;
		case 'v':
			o.verbose = 1;
			o.quiet = 0;
			break;
		case 'h':
			usage(0);
			break;
		case 'M':
			o.no_migrate = 1;
			break;
		case 'V':
			printf("deploy %s\n", VERSION);
			leave(EXIT_OK);
		case ':':
			warnx("option -%c needs an argument", optopt);
			usage(EXIT_USAGE);
			break;
		default:
			warnx("unknown option '%s'", printable(optind < argc &&
			    argv[optind][0] == '-' && strchr(argv[optind], optopt) ?
			    argv[optind] : argv[optind - 1]));
			usage(EXIT_USAGE);
		}
	}
}

/*
 * The words after the command (argv[0]), options first: a word starting
 * with '-' is an option (with the word after it when it ends in -C, -c,
 * -k or -w), until "--". The other words follow a "--", in their order,
 * so that getopt stops there and takes none of them for an option.
 * Returns the new argc; *argvp is the new argv.
 */
static int
after_command(int argc, char ***argvp)
{
	static char dashes[] = "--", **v;
	char **argv = *argvp, **pos;
	int i, n = 0, np = 0, end = 0;
	const char *p;

	v = xrealloc(NULL, ((size_t)argc + 2) * sizeof(*v));
	pos = xrealloc(NULL, (size_t)argc * sizeof(*pos));
	v[n++] = argv[0];
	for (i = 1; i < argc; i++) {
		if (end || argv[i][0] != '-' || argv[i][1] == '\0') {
			pos[np++] = argv[i];
			continue;
		}
		if (strcmp(argv[i], "--") == 0) {
			end = 1;
			continue;
		}
		v[n++] = argv[i];
		for (p = argv[i] + 1; *p; p++) {
			if (strchr("Cckw", *p) == NULL)
				continue;
			if (p[1] != '\0')
				break;
			if (i + 1 == argc) {
				warnx("option -%c needs an argument", *p);
				usage(EXIT_USAGE);
			}
			v[n++] = argv[++i];
			break;
		}
	}
	v[n++] = dashes;
	for (i = 0; i < np; i++)
		v[n++] = pos[i];
	v[n] = NULL;
	free(pos);
	*argvp = v;
	return n;
}

/*
 * The long options, anywhere before "--": --json, --version, --help.
 * They are taken out of argv; getopt sees the rest.
 */
static int
long_opts(int argc, char **argv)
{
	int i, n = 1;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			while (i < argc)
				argv[n++] = argv[i++];
			break;
		}
		if (strcmp(argv[i], "--json") == 0)
			o.json = 1;
		else if (strcmp(argv[i], "--verify") == 0)
			o.verify = 1;
		else if (strcmp(argv[i], "--version") == 0) {
			printf("deploy %s\n", VERSION);
			leave(EXIT_OK);
		} else if (strcmp(argv[i], "--help") == 0)
			usage(0);
		else
			argv[n++] = argv[i];
	}
	argv[n] = NULL;
	return n;
}

/*
 * Where the command word is (argc when there is none): after the options
 * and the words they take, or after a "--".
 */
static int
command_at(int argc, char **argv)
{
	const char *p;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return i + 1;
		if (argv[i][0] != '-' || argv[i][1] == '\0')
			return i;
		for (p = argv[i] + 1; *p && argv[i][1] != '-'; p++)
			if (strchr("Cckw", *p) != NULL) {
				i += p[1] == '\0';	/* its word follows */
				break;
			}
	}
	return argc;
}

/*
 * The options, then the command's words: on return (*argvp)[0] is the
 * command ("deploy" when none was given) and the rest its arguments.
 */
void
cmdline_parse(int *argcp, char ***argvp)
{
	int argc = *argcp, ended, at = command_at(*argcp, *argvp), rargc = 0;
	char **argv = *argvp, **rargv = NULL, *run = NULL;

	if (at < argc && strcmp(argv[at], "run") == 0) {
		/* run's words are the app's: none is deploy's option */
		run = argv[at];
		rargv = argv + at;
		rargc = argc - at;
		if (rargc > 1 && strcmp(rargv[1], "--") == 0) {
			rargv++;
			rargc--;
		}
		argc = at;
	}
	argc = long_opts(argc, argv);
	parse_opts(argc, argv);
	ended = optind > 1 && strcmp(argv[optind - 1], "--") == 0;
	argc -= optind;
	argv += optind;
	if (argc == 0) {	/* no command: deploy */
		static char dflt[] = "deploy", *dargv[] = { dflt, NULL };

		argc = 1;
		argv = dargv;
	}
	if (rargv != NULL) {
		rargv[0] = run;	/* long_opts ended argv with a NULL there */
		argc = rargc;
		argv = rargv;
	} else if (argc > 1 && !ended) {
		/* options may follow the command too, as in "deploy prune
		 * -k 2" or "deploy rollback -n"; "--", before the command or
		 * after it, ends them */
		argc = after_command(argc, &argv);
		optind = 1;
		parse_opts(argc, argv);
		argv[optind - 1] = argv[0];
		argc -= optind - 1;
		argv += optind - 1;
	}
	o.command = argv[0];
	msg_quiet(o.quiet);
	*argcp = argc;
	*argvp = argv;
}
