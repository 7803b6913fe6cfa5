#ifndef RELAY_CLI_H
#define RELAY_CLI_H
/* The command line (SPEC §1): serve, check, models, key, version, help. */

/* Run the command in argv; returns the process exit code. */
int cli_main(int argc, char **argv);

#endif
