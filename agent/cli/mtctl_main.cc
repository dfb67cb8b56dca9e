// mtctl: thin main over the mt_cli library (see commands.h).
#include <iostream>

#include "cli/commands.h"

int main(int argc, char** argv) {
  return mt::cli::RunMtctl(argc, argv, std::cout, std::cerr);
}
