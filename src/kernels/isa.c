/* Which build of our kernels runs (kernels/own.h): the best set of
 * instructions the CPU has, capped by SLIM_ISA, read once per process
 * (as oneDNN reads ONEDNN_MAX_CPU_ISA) and independent of oneDNN's cap. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernels/own_impl.h"

own_isa own_isa_cpu(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"))
        return OWN_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return OWN_ISA_AVX2;
    return OWN_ISA_GENERIC;
}

static const char *const names[] = {"generic", "avx2", "avx512"};

const char *own_isa_name(own_isa isa) {
    return isa >= OWN_ISA_GENERIC && isa <= OWN_ISA_AVX512 ? names[isa] : "?";
}

/* SLIM_ISA as read at the first ask: its cap, or -1 when its value is
 * bad (kept, for the message). */
static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static int env_cap;
static char env_value[32];

static void read_env(void) {
    const char *v = getenv("SLIM_ISA");
    env_cap = OWN_ISA_AVX512;
    if (!v || !*v) return;
    for (int i = 0; i <= OWN_ISA_AVX512; i++)
        if (strcasecmp(v, names[i]) == 0) {
            env_cap = i;
            return;
        }
    env_cap = -1;
    snprintf(env_value, sizeof env_value, "%.28s%s", v, strlen(v) > 28 ? "..." : "");
}

slim_status own_isa_env(own_isa *cap) {
    pthread_once(&env_once, read_env);
    if (env_cap < 0) {
        if (cap) *cap = OWN_ISA_GENERIC;
        return slim_error(SLIM_ERR_ARG,
                          "SLIM_ISA=%s: not an instruction set of ours (avx512, avx2 or generic)",
                          env_value);
    }
    if (cap) *cap = (own_isa)env_cap;
    return SLIM_OK;
}

own_isa own_isa_active(void) {
    pthread_once(&env_once, read_env);
    own_isa cpu = own_isa_cpu();
    if (env_cap < 0) return OWN_ISA_GENERIC;
    return (own_isa)env_cap < cpu ? (own_isa)env_cap : cpu;
}

const own_impl *own_impl_for(own_isa isa) {
    return isa == OWN_ISA_AVX512 ? &own_impl_avx512 : isa == OWN_ISA_AVX2 ? &own_impl_avx2 : NULL;
}

own_isa own_impl_isa(const own_impl *impl) { return impl ? impl->needs : OWN_ISA_GENERIC; }

const char *own_impl_name(const own_impl *impl) { return impl ? impl->name : "generic"; }

int own_impl_has_wino(const own_impl *impl) { return impl && impl->wino; }

slim_status own_impl_check(const own_impl *impl, const char *kernel) {
    if (!impl)
        return slim_error(SLIM_ERR_BACKEND,
                          "%s: no build of our kernels may run (SLIM_ISA, or a CPU without AVX2)",
                          kernel);
    if (impl->needs > own_isa_cpu())
        return slim_error(SLIM_ERR_BACKEND, "%s: this CPU cannot run our %s build", kernel,
                          impl->name);
    return SLIM_OK;
}
