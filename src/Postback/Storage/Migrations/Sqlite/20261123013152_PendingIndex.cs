using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Postback.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class PendingIndex : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_deliveries_Status_DueAt",
                table: "deliveries");

            migrationBuilder.CreateIndex(
                name: "IX_deliveries_pending_DueAt",
                table: "deliveries",
                column: "DueAt",
                filter: "\"Status\" = 'pending'");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_deliveries_pending_DueAt",
                table: "deliveries");

            migrationBuilder.CreateIndex(
                name: "IX_deliveries_Status_DueAt",
                table: "deliveries",
                columns: new[] { "Status", "DueAt" });
        }
    }
}
