/* Learning-rate schedules, evaluated per batch. */
#include "slim/optim.h"

#include <math.h>
#include <string.h>

static const char *const schedule_names[] = {"constant", "step", "cosine"};

const char *slim_schedule_name(slim_schedule schedule) {
    if ((unsigned)schedule < 3) return schedule_names[schedule];
    return "?";
}

slim_status slim_schedule_parse(const char *name, slim_schedule *out) {
    for (int i = 0; i < 3; i++)
        if (strcmp(name, schedule_names[i]) == 0) {
            *out = (slim_schedule)i;
            return SLIM_OK;
        }
    return slim_error(SLIM_ERR_ARG, "unknown schedule '%s' (expected constant, step or cosine)",
                      name);
}

float slim_schedule_lr(slim_schedule schedule, float base_lr, uint64_t step, uint64_t total) {
    if (total == 0) return base_lr;
    double t = (double)step / (double)total;
    if (t > 1) t = 1;
    switch (schedule) {
    case SLIM_SCHEDULE_CONSTANT: return base_lr;
    case SLIM_SCHEDULE_STEP: return base_lr * (t < 0.5 ? 1.0f : t < 0.75 ? 0.1f : 0.01f);
    case SLIM_SCHEDULE_COSINE: {
        /* Never exactly 0: the prox threshold lr*lambda and a step need lr > 0. */
        double lr = base_lr * 0.5 * (1.0 + cos(3.14159265358979323846 * t));
        return (float)(lr > base_lr * 1e-4 ? lr : base_lr * 1e-4);
    }
    }
    return base_lr;
}
