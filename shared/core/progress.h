// This process's progress beacon: long-running loops (training steps, checkpoint writing, sample
// generation, feature extraction) note the phase they enter; the worker's watchdog
// (worker/train/watchdog.h) tears a rank down when the beacon stays silent too long. Two relaxed
// atomic stores per note: cheap enough for every batch. Safe from any thread.
#pragma once

namespace ldm {

// `phase` must outlive the process (a string literal): it is kept by pointer.
void note_progress(const char* phase);
double last_progress_seconds();  // steady clock (steady_seconds()) of the last note
const char* progress_phase();    // the last note's phase
double steady_seconds();         // the steady clock, in seconds

}  // namespace ldm
