/* Relay: an LLM API relay in one static binary. This file is only the
 * entry point; src/cli.c reads the command line. */
#include "cli.h"

int
main(int argc, char **argv)
{
	return cli_main(argc, argv);
}
