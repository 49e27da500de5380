/* Peak resident memory per epoch, from Linux's /proc (0 elsewhere). */
#include "train/internal.h"

#include <stdio.h>
#include <string.h>

void train_rss_reset_peak(void) {
    /* "5" resets the peak (VmHWM) to the current RSS (Linux >= 4.0). */
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return;
    fputs("5", f);
    fclose(f);
}

double train_rss_peak_mib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    double kib = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) {
            sscanf(line + 6, "%lf", &kib);
            break;
        }
    fclose(f);
    return kib / 1024.0;
}
