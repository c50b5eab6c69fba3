/* Subcommands of the `evbus` command-line tool. Each takes the arguments from
 * its own name on (argv[0] is the subcommand) and returns the exit status. */
#ifndef EVBUS_CLI_H
#define EVBUS_CLI_H

int evbus__cmd_pub(int argc, char **argv);
int evbus__cmd_status(int argc, char **argv);
int evbus__cmd_dlq(int argc, char **argv);
int evbus__cmd_replay(int argc, char **argv);

/* evbus region status|on|off|fence|unfence|failover|failback */
int evbus__cmd_region(int argc, char **argv);
int evbus__cmd_plugin(int argc, char **argv);
int evbus__cmd_keygen(int argc, char **argv);

#endif
