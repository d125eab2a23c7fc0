import { useCallback, useEffect, useState } from 'react';

export type ThemeChoice = 'light' | 'dark';
const KEY = 'koala-web:theme';

function systemTheme(): ThemeChoice {
  return window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

/** Apply the stored theme (or the system's) to <html data-theme>; called before the first render. */
export function applyInitialTheme(): void {
  const stored = localStorage.getItem(KEY);
  document.documentElement.dataset.theme = stored === 'light' || stored === 'dark' ? stored : systemTheme();
}

/** Light/dark theme: follows prefers-color-scheme until the user picks one with the toggle. */
export function useTheme(): [ThemeChoice, () => void] {
  const [theme, setTheme] = useState<ThemeChoice>(() => (document.documentElement.dataset.theme as ThemeChoice) ?? systemTheme());
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
  }, [theme]);
  useEffect(() => {
    const mq = window.matchMedia?.('(prefers-color-scheme: dark)');
    if (!mq) return;
    const onChange = () => {
      if (!localStorage.getItem(KEY)) setTheme(mq.matches ? 'dark' : 'light');
    };
    mq.addEventListener('change', onChange);
    return () => mq.removeEventListener('change', onChange);
  }, []);
  const toggle = useCallback(() => {
    setTheme((t) => {
      const next = t === 'dark' ? 'light' : 'dark';
      localStorage.setItem(KEY, next);
      return next;
    });
  }, []);
  return [theme, toggle];
}
