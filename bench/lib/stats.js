// The figures every benchmark reports: a median with its extremes.
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
export const spread = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
