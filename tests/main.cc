// main.cc is the single doctest main for every unit test (`*_test.cc` beside each module).

#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
