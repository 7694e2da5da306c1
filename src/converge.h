/* converge.h: converging: the program runs the release current names. */
#ifndef DEPLOY_CONVERGE_H
#define DEPLOY_CONVERGE_H

#include <stddef.h>

int converge(int by_hand, int *acted);
#endif
