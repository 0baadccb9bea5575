/**
 * A task that runs one at a time: asked again while it runs, it runs once more when it ends (asks in between are
 * one). Reloads use it: each reads the file when it starts, so the last signal's file is the one left in force,
 * which two reads finishing out of order would not promise.
 */
export function oneAtATime(task: () => Promise<void>): () => void {
  let running = false;
  let again = false;
  const run = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    again = false;
    task()
      .catch(() => undefined) // the task reports its own failures; the next run must still happen
      .finally(() => {
        running = false;
        if (again) run();
      });
  };
  return run;
}
