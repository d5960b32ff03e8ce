#include "mode.h"

const char *mode_name(Mode m) { return m == MODE_MPL ? "mpl" : m == MODE_UDA ? "uda" : "supervised"; }

const char *phase_name(Mode m, Phase p) {
    return p == PHASE_MAIN ? mode_name(m) : p == PHASE_FINETUNE ? "finetune" : "done";
}
