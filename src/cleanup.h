/* cleanup.h: cleanup of what a killed run left behind. */
#ifndef DEPLOY_CLEANUP_H
#define DEPLOY_CLEANUP_H

#include <stddef.h>
#include "core.h"
#include "order.h"
#include "run.h"

int cleanup(void);
#endif
