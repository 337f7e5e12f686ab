/* main.c - mqctl: the command table, `mqctl --help`, `mqctl help COMMAND` and --version. */
#include <string.h>

#include "mqctl.h"

static const struct mqctl_cmd commands[] = {
        {"send", cmd_send, send_usage, "send messages (arguments, lines of stdin, a file)"},
        {"recv", cmd_recv, recv_usage, "receive and print messages"},
        {"stats", cmd_stats, stats_usage, "show a queue's statistics (table or JSON)"},
        {"watch", cmd_watch, watch_usage, "live view of queues: depth, rates, ages, clients"},
        {"check", cmd_check, check_usage, "offline health check of a queue's segment"},
        {"list", cmd_list, list_usage, "list the queues in /dev/shm and who serves them"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))
/* The commands, for errors. */
#define COMMAND_NAMES "send, recv, stats, watch, check, list"

static void usage(FILE *f)
{
	fprintf(f, "Usage: mqctl COMMAND [OPTION]... [ARG]...\n"
	           "Send, receive and inspect messages of a libmq queue in POSIX shared memory.\n"
	           "No broker is needed to send, receive or read statistics.\n"
	           "\n"
	           "Commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-7s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
	        "\n"
	        "Every command but list takes -q, --queue NAME (default $MQ_QUEUE, else\n"
	        "%s; watch takes several, and without one watches every queue a live\n"
	        "mqbroker serves). Every command takes -h, --help. 'mqctl COMMAND --help'\n"
	        "(or 'mqctl help COMMAND') tells more.\n"
	        "\n"
	        "  -h, --help      this help\n"
	        "  -V, --version   print the version\n"
	        "\n"
	        "Examples:\n"
	        "  mqctl send hello world          two messages to %s\n"
	        "  mqctl recv -n 2                 print them, one per line\n"
	        "  mqctl stats --json              the queue's statistics as JSON\n"
	        "  mqctl list                      every queue, and who serves it\n"
	        "\n" MQCTL_EXIT_HELP,
	        MQ_DEFAULT_NAME, MQ_DEFAULT_NAME);
}

static const struct mqctl_cmd *find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		return usage_fail(NULL, "no command given (one of " COMMAND_NAMES ")");
	}
	const char *word = argv[1];
	if (!strcmp(word, "-h") || !strcmp(word, "--help")) {
		usage(stdout);
		return MQCTL_OK;
	}
	if (!strcmp(word, "-V") || !strcmp(word, "--version")) {
		printf("mqctl %s\n", MQCTL_VERSION);
		return MQCTL_OK;
	}
	if (!strcmp(word, "help")) {
		if (argc == 2) {
			usage(stdout);
			return MQCTL_OK;
		}
		const struct mqctl_cmd *c = find(argv[2]);
		if (!c || argc > 3)
			return usage_fail(NULL, "unknown command '%s' (one of " COMMAND_NAMES ")",
			                  argv[2]);
		c->usage(stdout);
		return MQCTL_OK;
	}
	if (word[0] == '-')
		return usage_fail(
		        NULL,
		        "unknown option '%s' (the command comes first: mqctl COMMAND [OPTION]...)",
		        word);
	const struct mqctl_cmd *c = find(word);
	if (!c)
		return usage_fail(NULL, "unknown command '%s' (one of " COMMAND_NAMES ")", word);
	return c->run(argc - 1, argv + 1);
}
