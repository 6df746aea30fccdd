/**
 * Plays a process that dies: once `crash()` is called, every call through the wrapper
 * (and every answer still on its way back) hangs forever, so the "dead" bridge's task
 * never touches the infrastructure again, exactly as if its process had been killed.
 */
export function crashable<T extends object>(target: T): { driver: T; crash(): void } {
  let crashed = false;
  const never = new Promise<never>(() => {});
  const driver = new Proxy(target, {
    get(obj, prop, receiver) {
      const value: unknown = Reflect.get(obj, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (crashed) return never;
        const result: unknown = value.apply(obj, args);
        if (!(result instanceof Promise)) return result;
        return result.then(
          (v: unknown) => (crashed ? never : v),
          (e: unknown) => (crashed ? never : Promise.reject(e)),
        );
      };
    },
  });
  return {
    driver,
    crash: () => {
      crashed = true;
    },
  };
}
