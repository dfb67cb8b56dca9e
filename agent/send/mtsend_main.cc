#include "send/mtsend.h"

int main(int argc, char** argv) { return mt::send::MtsendMain(argc, argv); }
