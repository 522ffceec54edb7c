// A shared library that is not a seedproof plugin: it lacks the entry point.
extern "C" int seedproof_something_else(void) { return 42; }
