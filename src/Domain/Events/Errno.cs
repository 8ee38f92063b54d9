namespace Audit.Domain.Events;

/// <summary>Linux errno numbers the model uses (asm-generic/errno-base.h, errno.h). Stored positive.</summary>
public static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EIO = 5;
    public const int ENXIO = 6;
    public const int E2BIG = 7;
    public const int ENOEXEC = 8;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EFAULT = 14;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int ENODEV = 19;
    public const int EINVAL = 22;
    public const int ENOTTY = 25;
    public const int ENOSPC = 28;
    public const int ENOSYS = 38;
    public const int EOPNOTSUPP = 95;
    public const int EHWPOISON = 133;

    private static readonly (int Number, string Name)[] Names =
    [
        (EPERM, "EPERM"), (ENOENT, "ENOENT"), (EIO, "EIO"), (ENXIO, "ENXIO"), (E2BIG, "E2BIG"),
        (ENOEXEC, "ENOEXEC"), (EBADF, "EBADF"), (EAGAIN, "EAGAIN"), (ENOMEM, "ENOMEM"), (EFAULT, "EFAULT"),
        (EBUSY, "EBUSY"), (EEXIST, "EEXIST"), (ENODEV, "ENODEV"), (EINVAL, "EINVAL"), (ENOTTY, "ENOTTY"),
        (ENOSPC, "ENOSPC"), (ENOSYS, "ENOSYS"), (EOPNOTSUPP, "EOPNOTSUPP"), (EHWPOISON, "EHWPOISON"),
    ];

    /// <summary>"0" for success, "-EINVAL" style otherwise (as the kernel returns it).</summary>
    public static string Format(int errno)
    {
        if (errno == 0)
        {
            return "0";
        }

        foreach (var (number, name) in Names)
        {
            if (number == errno)
            {
                return "-" + name;
            }
        }

        return "-" + errno.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Accepts "EINVAL", "-EINVAL", "22", "-22"; returns the positive number.</summary>
    public static bool TryParse(string text, out int errno)
    {
        var s = text.Trim().TrimStart('-');
        foreach (var (number, name) in Names)
        {
            if (string.Equals(name, s, StringComparison.OrdinalIgnoreCase))
            {
                errno = number;
                return true;
            }
        }

        if (int.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out errno))
        {
            return true;
        }

        errno = 0;
        return false;
    }
}
