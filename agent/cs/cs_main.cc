// mt-cs: see cs_cli.h.
#include <iostream>

#include "cs/cs_cli.h"

int main(int argc, char** argv) { return mt::cs::RunMtCs(argc, argv, std::cout, std::cerr); }
