/* cleanup.h: cleanup of what a killed run left behind. */
#ifndef DEPLOY_CLEANUP_H
#define DEPLOY_CLEANUP_H

#include <stddef.h>

int cleanup(int by_hand);
#endif
