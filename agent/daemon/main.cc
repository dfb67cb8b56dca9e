// mt-agent: thin main over the daemon library (agent_main.h).
#include "daemon/agent_main.h"

int main(int argc, char** argv) { return mt::daemon::RunAgentMain(argc, argv); }
