#include <check.h>
int main() { return 0; }
