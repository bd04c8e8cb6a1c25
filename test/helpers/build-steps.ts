// Step lists more than one suite runs on the real masters (as master.cfg snippets).

/** mkdir, a file in it, cpdir, stat of the copy, rmdir, then a check of what is left: every step SUCCESS. */
export const FILESYSTEM_STEPS = [
  `steps.MakeDirectory(dir='build/made')`,
  `steps.ShellCommand(name='fill', command=['sh', '-c', 'echo x > made/f'])`,
  `steps.CopyDirectory(src='build/made', dest='build/copied')`,
  `steps.FileExists(file='build/copied/f')`,
  `steps.RemoveDirectory(dir='build/made')`,
  `steps.ShellCommand(name='check', command=['sh', '-c', 'test ! -e made && test -f copied/f'])`,
];
